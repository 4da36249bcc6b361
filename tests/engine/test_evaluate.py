"""Fixed-episode evaluation: determinism, statistics, episode files, evaluate_run."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from stsampler.config import config_to_dict
from stsampler.engine.builder import build_dataset, build_model
from stsampler.engine.checkpoint import save_checkpoint
from stsampler.engine.evaluate import evaluate, evaluate_run, make_episodes
from stsampler.errors import ConfigError, DatasetError


@pytest.fixture
def learned_cfg(tiny_config):
    sampler = {"kind": "learned", "num_frames": 3, "temporal": True, "spatial": True, "task_adaptive": True}
    return tiny_config(data={"num_frames": 6}, sampler=sampler)


def test_same_episodes_same_accuracy_to_the_last_digit(learned_cfg) -> None:
    torch.manual_seed(0)
    model = build_model(learned_cfg, 4)
    dataset = build_dataset(learned_cfg, "test", train=False)
    episodes = make_episodes(dataset, 3, 1, 1, 4, seed=3)
    assert episodes == make_episodes(dataset, 3, 1, 1, 4, seed=3)
    seen = []
    first = evaluate(model, dataset, episodes, 1, "cpu", on_batch=lambda batch, out: seen.append(out.logits.shape))
    second = evaluate(model, dataset, episodes, 1, "cpu")
    assert first.per_episode == second.per_episode and first.accuracy == second.accuracy
    assert seen == [torch.Size([3, 3])] * 4
    acc = torch.tensor(first.per_episode, dtype=torch.float64)
    assert first.accuracy == pytest.approx(100 * acc.mean().item())
    assert first.ci95 == pytest.approx(100 * 1.96 * acc.std(unbiased=False).item() / math.sqrt(4))
    assert set(first.per_class) <= {item.class_name for item in dataset.items} and first.num_episodes == 4
    assert model.training  # evaluate restores the caller's mode


def test_evaluate_run_reuses_the_episode_file(tiny_config, tmp_path: Path) -> None:
    cfg = tiny_config()
    torch.manual_seed(0)
    model = build_model(cfg, 4)
    run = tmp_path / "run"
    save_checkpoint(run / "checkpoints" / "last.pt",
                    {"config": config_to_dict(cfg), "num_train_classes": 4, "model": model.state_dict()})
    episodes_file = tmp_path / "episodes.json"
    first = evaluate_run(run, split="test", episodes=5, way=3, shot=1, seed=1, episodes_file=episodes_file,
                         out=tmp_path / "eval.json", progress=False)
    assert episodes_file.is_file() and json.loads((tmp_path / "eval.json").read_text())["accuracy"] == first["accuracy"]
    again = evaluate_run(run, split="test", episodes=99, way=3, shot=1, seed=42, episodes_file=str(episodes_file),
                         progress=False)
    assert again["num_episodes"] == 5 and again["per_episode"] == first["per_episode"]
    with pytest.raises(DatasetError, match="other episodes"):
        evaluate_run(run, split="test", way=2, shot=1, episodes_file=str(episodes_file), progress=False)


def _untrained_run(cfg, run: Path) -> Path:
    torch.manual_seed(0)
    model = build_model(cfg, 4)
    save_checkpoint(run / "checkpoints" / "last.pt",
                    {"config": config_to_dict(cfg), "num_train_classes": 4, "model": model.state_dict()})
    return run


def test_evaluate_run_takes_the_runs_episode_shape(tiny_config, tmp_path: Path) -> None:
    run = _untrained_run(tiny_config(train={"way": 2, "shot": 2}, eval={"query": 1, "episodes": 3}), tmp_path / "run")
    report = evaluate_run(run, progress=False)
    assert (report["way"], report["shot"], report["query"], report["num_episodes"]) == (2, 2, 1, 3)
    explicit = evaluate_run(run, way=3, shot=1, query=2, episodes=2, progress=False)
    assert (explicit["way"], explicit["shot"], explicit["query"], explicit["num_episodes"]) == (3, 1, 2, 2)


@pytest.mark.parametrize("flag, value", [("way", 1), ("shot", 0), ("query", 0), ("episodes", 0)])
def test_evaluate_run_refuses_an_empty_episode_shape(tiny_config, tmp_path: Path, flag: str, value: int) -> None:
    run = _untrained_run(tiny_config(), tmp_path / "run")
    with pytest.raises(ConfigError, match=rf"--{flag} \(eval\.{flag}\) must be >= \d+, got {value}"):
        evaluate_run(run, progress=False, **{flag: value})


def _with_substitution(monkeypatch, dataset) -> tuple[str, str]:
    """Make every collated episode report that its first video was asked for as another video of its class."""
    from stsampler.engine import runtime

    original = runtime.collate_episode
    substitute: dict[int, int] = {}

    def collate(items, shot):
        batch = original(items, shot)
        first = int(batch["indices"][0])
        members = dataset.indices_by_class()[dataset.labels[first]]
        asked = substitute.setdefault(first, next(i for i in members if i != first))
        batch["requested"] = batch["indices"].clone()
        batch["requested"][0] = asked
        return batch

    monkeypatch.setattr(runtime, "collate_episode", collate)
    return substitute


def test_substitutions_are_counted_and_named(tiny_config, monkeypatch) -> None:
    cfg = tiny_config()
    torch.manual_seed(0)
    model = build_model(cfg, 4)
    dataset = build_dataset(cfg, "test", train=False)
    episodes = make_episodes(dataset, 3, 1, 1, 4, seed=3)
    clean = evaluate(model, dataset, episodes, 1, "cpu")
    assert clean.num_substitutions == 0 and clean.substitutions == []
    substitute = _with_substitution(monkeypatch, dataset)
    result = evaluate(model, dataset, episodes, 1, "cpu")
    keys = dataset.keys
    expected = {}
    for episode in episodes:
        first = episode.indices[0]
        pair = (keys[substitute[first]], keys[first])
        expected[pair] = expected.get(pair, 0) + 1
    assert result.num_substitutions == 4
    assert {(e["requested"], e["replacement"]): e["count"] for e in result.substitutions} == expected
    assert result.per_episode == clean.per_episode  # the decoded videos are the same
