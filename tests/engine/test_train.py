"""Episodic training on tiny synthetic videos: learning, resume equivalence, bad input."""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from stsampler.engine.builder import build_dataset, build_model
from stsampler.engine.checkpoint import load_checkpoint, load_model
from stsampler.engine.evaluate import evaluate, make_episodes
from stsampler.engine.train import lr_factor, train
from stsampler.errors import CheckpointError, DatasetError


def test_training_lowers_the_loss_and_beats_chance(tiny_config, tmp_path: Path) -> None:
    cfg = tiny_config(
        train={"episodes": 32, "tasks_per_batch": 4, "log_every": 2, "val_every": 16, "val_episodes": 4,
               "ckpt_every": 16},
    )
    results = train(cfg, tmp_path / "run", progress=False)
    history = results["train_history"]
    assert results["status"] == "finished" and results["episodes"] == 32 and len(history) == 4
    assert history[-1]["loss"] < history[0]["loss"]
    run = tmp_path / "run"
    for name in ("config.yaml", "train.log", "results.json", "checkpoints/last.pt", "checkpoints/best.pt"):
        assert (run / name).is_file(), name
    assert json.loads((run / "results.json").read_text())["episodes"] == 32
    assert [v["episodes"] for v in results["val"]] == [16, 32]
    assert results["best"]["accuracy"] == max(v["accuracy"] for v in results["val"])
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["episodes"] == 32
    # Chance is 1/3: 3-way episodes of the test classes, never seen in training.
    model, cfg = load_model(run)
    test_set = build_dataset(cfg, "test", train=False)
    result = evaluate(model, test_set, make_episodes(test_set, 3, 1, 1, 10, seed=5), 1, "cpu")
    assert result.accuracy > 100 / 3 + 15, (history, result.accuracy)


@pytest.mark.parametrize("kind", ["learned", "oracle"])
def test_validation_on_synthetic_data_reports_the_event_hit_rate(
    kind: str, tiny_config, synth_root: Path, tmp_path: Path
) -> None:
    """The learned sampler's validation records and logs where its picks fall; the oracle, handed the
    event, is not scored."""
    cfg = tiny_config(
        data={"metadata": str(synth_root / "metadata.json")}, sampler={"kind": kind},
        train={"episodes": 4, "val_every": 2, "val_episodes": 2},
    )
    results = train(cfg, tmp_path / "run", progress=False)
    log = (tmp_path / "run" / "train.log").read_text()
    assert [v["episodes"] for v in results["val"]] == [2, 4]
    if kind == "oracle":
        assert all("hit_rate" not in v for v in results["val"]) and "temporal hit rate" not in log
        return
    for entry in results["val"]:
        assert 0.0 <= entry["hit_rate"] <= 100.0 and entry["magnification"] >= 0.0
        assert f"temporal hit rate {entry['hit_rate']:.1f}%" in log


def test_validation_uses_the_evaluation_task(tiny_config, tmp_path: Path) -> None:
    """Trained 4-way 1-shot for a 3-way 2-shot test: validation (the val split has only 3 classes)
    scores the test's task, and the best checkpoint's recorded accuracy is the one of that task."""
    cfg = tiny_config(
        train={"way": 4, "episodes": 4, "val_every": 4, "val_episodes": 4},
        eval={"way": 3, "shot": 2},
    )
    results = train(cfg, tmp_path / "run", progress=False)
    model, cfg = load_model(tmp_path / "run" / "checkpoints" / "best.pt")
    val_set = build_dataset(cfg, "val", train=False)
    episodes = make_episodes(val_set, 3, 2, cfg.eval.query, 4, seed=cfg.eval.seed)
    assert evaluate(model, val_set, episodes, 2, "cpu").accuracy == results["best"]["accuracy"]


@pytest.mark.parametrize("ema_decay", [None, 0.5])
def test_resume_reaches_the_same_parameters(ema_decay: float | None, tiny_config, tmp_path: Path) -> None:
    """Resumed between the selector warm-up (random frames) and selection: the same run as straight
    (with a moving average of the weights, the same average and the same optimiser weights)."""
    cfg = tiny_config(
        data={"num_frames": 6},
        sampler={"kind": "learned", "num_frames": 3, "temporal": True, "spatial": True, "task_adaptive": True,
                 "sigma_every": 2, "selector_warmup": 2},
        train={"way": 2, "query": 1, "episodes": 4, "tasks_per_batch": 1, "schedule": "cosine", "warmup": 2,
               "val_every": 2, "val_episodes": 1, "optimizer": "sgd", "lr": 0.05, "ema_decay": ema_decay},
    )
    straight = train(cfg, tmp_path / "straight", progress=False)
    stopped = train(cfg, tmp_path / "resumed", progress=False, max_steps=2)
    assert stopped["status"] == "stopped" and stopped["episodes"] == 2
    with pytest.raises(CheckpointError, match="--resume"):
        train(cfg, tmp_path / "resumed", progress=False)
    resumed = train(cfg, tmp_path / "resumed", resume=True, progress=False)
    assert resumed["episodes"] == straight["episodes"] == 4
    a = load_checkpoint(tmp_path / "straight" / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.pt")
    weights = ("model", "training_weights") if ema_decay is not None else ("model",)
    assert ("training_weights" in a) == (ema_decay is not None)
    for entry in weights:
        assert a[entry].keys() == b[entry].keys()
        for key in a[entry]:
            assert torch.equal(a[entry][key], b[entry][key]), (entry, key)
    assert [v["accuracy"] for v in straight["val"]] == [v["accuracy"] for v in resumed["val"]]
    assert straight["train"]["sigma"] == resumed["train"]["sigma"] == pytest.approx(0.05 * 0.8)
    assert [h["episodes"] for h in resumed["train_history"]] == [1, 2, 3, 4]
    # The validation at 2 episodes came before the selector's first step: never the best checkpoint.
    assert straight["best"]["episodes"] == resumed["best"]["episodes"] == 4


def test_a_scanner_sharing_the_backbone_stays_one_set_of_weights_through_training_and_loading(
    tiny_config, tmp_path: Path
) -> None:
    cfg = tiny_config(
        sampler={"kind": "learned", "scanner_arch": "smallcnn", "scanner_shares_backbone": True,
                 "evaluator_learns": False, "saliency_trains_scanner": False},
        train={"episodes": 2, "tasks_per_batch": 1},
    )
    train(cfg, tmp_path / "run", progress=False)
    checkpoint = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert checkpoint["episodes"] == 2
    state = checkpoint["model"]  # after training, each shared tensor under both names is the same
    for scanner_key, backbone_key in [("stem.0.weight", "0.0.weight"), ("stem.1.running_mean", "0.1.running_mean"),
                                      ("stages.2.0.weight", "3.0.weight")]:
        assert torch.equal(state["sampler.scanner." + scanner_key], state["backbone.trunk." + backbone_key])
    model, _ = load_model(tmp_path / "run")
    assert model.sampler.scanner.stem is model.backbone.trunk[0]
    assert model.sampler.scanner.stages[2] is model.backbone.trunk[3]


def test_the_scan_classifier_trains_with_the_learned_sampler_only(tiny_config, tmp_path: Path) -> None:
    """``sampler.scan_aux_weight``: its loss is logged and its weights saved and loaded with the
    learned sampler; the baselines, which scan nothing, do not read the key."""
    cfg = tiny_config(
        sampler={"kind": "learned", "scanner_arch": "smallcnn", "scan_aux_weight": 0.5},
        train={"episodes": 2, "tasks_per_batch": 1},
    )
    results = train(cfg, tmp_path / "run", progress=False)
    assert all(entry["scan"] > 0 for entry in results["train_history"])
    assert "scan=" in (tmp_path / "run" / "train.log").read_text()
    model, _ = load_model(tmp_path / "run")
    assert model.scan_classifier is not None and model.scan_aux_weight == 0.5
    uniform = build_model(tiny_config(sampler={"kind": "uniform", "scan_aux_weight": 0.5}), 4)
    assert uniform.scan_classifier is None and uniform.scan_aux_weight == 0.0


def test_resume_with_another_architecture_is_refused(tiny_config, tmp_path: Path) -> None:
    train(tiny_config(), tmp_path / "run", progress=False, max_steps=1)
    with pytest.raises(CheckpointError, match="model.head"):
        train(tiny_config(model={"head": "otam"}), tmp_path / "run", resume=True, progress=False)


def test_missing_videos_fail_before_training(tiny_config, synth_root: Path, tmp_path: Path, caplog) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match=r"24 of the 24 videos of the train split.*splits check"):
        train(tiny_config(data={"data_root": str(empty)}), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
    # A small loss (Kinetics-style) is tolerated with a warning.
    partial = tmp_path / "partial"
    shutil.copytree(synth_root / "videos", partial)
    victim = sorted(partial.rglob("*.mp4"))[0]
    victim.unlink()
    cfg = tiny_config(data={"data_root": str(partial), "max_bad_fraction": 0.1})
    with caplog.at_level(logging.WARNING):
        dataset = build_dataset(cfg, "train", train=True)
    assert "1 of the 24 videos" in caplog.text
    assert len(dataset) == 23


def test_lr_schedules() -> None:
    from stsampler.config import TrainConfig

    cosine = TrainConfig(episodes=100, tasks_per_batch=10, schedule="cosine", warmup=20)
    assert lr_factor(0, cosine) == pytest.approx(0.5)  # warm-up: 10 of 20 episodes
    assert lr_factor(5, cosine) == pytest.approx(0.5)  # half-way down the cosine
    step = TrainConfig(episodes=100, tasks_per_batch=10, schedule="step", step_every=30, step_gamma=0.1)
    assert [lr_factor(s, step) for s in (0, 2, 3, 6)] == pytest.approx([1.0, 1.0, 0.1, 0.01])


def test_resume_with_another_recipe_is_refused_and_keeps_the_config(tiny_config, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(tiny_config(), run, progress=False, max_steps=1)
    saved = (run / "config.yaml").read_text()
    with pytest.raises(CheckpointError, match=r"train\.lr: 0\.003 -> 0\.5"):
        train(tiny_config(train={"lr": 0.5}), run, resume=True, progress=False)
    assert (run / "config.yaml").read_text() == saved
    # Keys that cannot change the result (here the log interval) may differ; config.yaml stays the run's.
    results = train(tiny_config(train={"log_every": 2}), run, resume=True, progress=False)
    assert results["status"] == "finished" and (run / "config.yaml").read_text() == saved


def test_resume_after_the_training_classes_changed_is_refused(tiny_config, synth_root: Path, tmp_path: Path) -> None:
    splits = tmp_path / "splits"
    shutil.copytree(synth_root / "splits", splits)
    cfg = tiny_config(data={"split_dir": str(splits)})
    train(cfg, tmp_path / "run", progress=False, max_steps=1)
    train_list = splits / "trainlist03.txt"
    lines = train_list.read_text().splitlines()
    dropped = lines[0].split("/")[0]
    train_list.write_text("\n".join(line for line in lines if not line.startswith(dropped + "/")) + "\n")
    with pytest.raises(CheckpointError, match="trained on 4 training classes but the train split list now has 3"):
        train(cfg, tmp_path / "run", resume=True, progress=False)


def test_substituted_videos_are_logged_and_recorded(tiny_config, tmp_path: Path, monkeypatch) -> None:
    from stsampler.engine import runtime

    original = runtime.collate_episode

    def collate(items, shot):  # the first video of every episode "replaced" the one after it
        batch = original(items, shot)
        batch["requested"] = batch["indices"].clone()
        batch["requested"][0] = batch["indices"][0] + 1 if batch["indices"][0] % 2 == 0 else batch["indices"][0] - 1
        return batch

    monkeypatch.setattr(runtime, "collate_episode", collate)
    run = tmp_path / "run"
    train(tiny_config(), run, progress=False, max_steps=2)
    results = train(tiny_config(), run, progress=False, resume=True)  # the count survives the resume
    saved = json.loads((run / "results.json").read_text())
    assert saved["num_substitutions"] == results["num_substitutions"] == 8
    entries = saved["substitutions"]["train"]
    assert sum(e["count"] for e in entries) == 8 and saved["substitutions"]["val"] == []
    log_text = (run / "train.log").read_text()
    for entry in entries:
        assert f"unreadable video {entry['requested']} replaced by {entry['replacement']}" in log_text
