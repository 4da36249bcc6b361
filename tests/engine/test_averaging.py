"""The moving average of the weights (``train.ema_decay``): its update, its swap, and a run that uses it."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from stsampler.engine.averaging import WeightAverage
from stsampler.engine.builder import build_dataset
from stsampler.engine.checkpoint import load_checkpoint, load_model
from stsampler.engine.evaluate import evaluate, make_episodes
from stsampler.engine.train import train


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))


def test_update_moves_floats_by_one_minus_decay_and_copies_counters() -> None:
    model = _model()
    average = WeightAverage(model, decay=0.75)
    before = {name: value.clone() for name, value in model.state_dict().items()}
    model.train()
    model(torch.randn(2, 3, 8, 8))  # batch norm: new running statistics, one more counted batch
    with torch.no_grad():
        model[0].weight.add_(1.0)
    average.update(model)
    now = model.state_dict()
    for name, value in average.state_dict().items():
        if value.is_floating_point():
            torch.testing.assert_close(value, 0.75 * before[name] + 0.25 * now[name])
        else:
            assert torch.equal(value, now[name]) and not torch.equal(value, before[name]), name


def test_applied_swaps_the_average_in_and_the_weights_back() -> None:
    model = _model()
    average = WeightAverage(model, decay=0.5)
    start = model[0].weight.detach().clone()
    with torch.no_grad():
        model[0].weight.add_(2.0)
    average.update(model)
    with average.applied(model):
        torch.testing.assert_close(model[0].weight.detach(), start + 1.0)
    torch.testing.assert_close(model[0].weight.detach(), start + 2.0)
    with pytest.raises(RuntimeError, match="inside"), average.applied(model):
        raise RuntimeError("inside")
    torch.testing.assert_close(model[0].weight.detach(), start + 2.0)


def test_decay_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        WeightAverage(_model(), decay=1.0)


def test_a_run_validates_saves_and_tests_the_average(tiny_config, tmp_path: Path) -> None:
    """The checkpoints' weights are the average, not the optimiser's; the best checkpoint's recorded
    validation accuracy is what its weights score on the validation episodes."""
    cfg = tiny_config(train={"episodes": 8, "val_every": 4, "val_episodes": 16, "ema_decay": 0.9})
    results = train(cfg, tmp_path / "run", progress=False)
    last = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    differs = [key for key, value in last["model"].items()
               if value.is_floating_point() and not torch.equal(value, last["training_weights"][key])]
    assert differs, "the average equals the optimiser's weights"
    model, cfg = load_model(tmp_path / "run" / "checkpoints" / "best.pt")
    val_set = build_dataset(cfg, "val", train=False)
    episodes = make_episodes(val_set, cfg.train.way, 1, cfg.eval.query, 16, seed=cfg.eval.seed)
    assert evaluate(model, val_set, episodes, 1, "cpu").accuracy == results["best"]["accuracy"]
