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
from stsampler.engine.evaluate import evaluate, evaluate_run, make_episodes, resolve_amp
from stsampler.errors import ConfigError, DatasetError


@pytest.fixture
def learned_cfg(tiny_config):
    return tiny_config(data={"num_frames": 6},
                       sampler={"kind": "learned", "num_frames": 3, "temporal": True, "spatial": True, "task_adaptive": True})


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


def test_amp_resolution_on_cpu() -> None:
    cpu = torch.device("cpu")
    assert resolve_amp("auto", cpu, "resnet50") == torch.bfloat16
    assert resolve_amp("auto", cpu, "smallcnn") is None
    assert resolve_amp("none", cpu, "resnet50") is None
    assert resolve_amp("bf16", cpu, "smallcnn") == torch.bfloat16
    with pytest.raises(ConfigError, match="fp16"):
        resolve_amp("fp16", cpu, "resnet50")
