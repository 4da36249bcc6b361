"""Fault matrix, unwritable outputs: refused before any work, one line naming the path, exit 2.

Tests run as root, which may write into read-only folders, so each path lies under a regular file.
Every command here would fail later on its other inputs (no data under the config's split folder,
no support videos): the output check must come first for the message to name the output path.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from stsampler.cli import main
from stsampler.config import config_from_dict, config_to_dict, save_config
from stsampler.engine.builder import build_model
from stsampler.engine.checkpoint import save_checkpoint


def _config():
    return config_from_dict({
        "data": {"split_dir": "/nonexistent/splits", "num_frames": 4, "crop_size": 32, "resize_short": 32},
        "sampler": {"kind": "uniform", "num_frames": 2},
        "model": {"backbone": "smallcnn", "pretrained": False},
        "train": {"device": "cpu"},
    })


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    """A config file, a checkpoint, and ``blocker``: a regular file nothing can be written under."""
    cfg = _config()
    checkpoint = save_checkpoint(tmp_path / "model.pt", {"config": config_to_dict(cfg), "num_train_classes": 2,
                                                          "model": build_model(cfg, 2).state_dict()})
    blocker = tmp_path / "blocker"
    blocker.write_text("keep me\n")
    return {"config": save_config(cfg, tmp_path / "run.yaml"), "checkpoint": checkpoint, "blocker": blocker}


CASES = {
    "eval --out": lambda p, bad: ["eval", str(p["checkpoint"]), "--out", str(bad)],
    "eval --episodes-file": lambda p, bad: ["eval", str(p["checkpoint"]), "--episodes-file", str(bad)],
    "train --run-dir": lambda p, bad: ["train", str(p["config"]), "--run-dir", str(bad)],
    "predict --out": lambda p, bad: ["predict", str(p["checkpoint"]), "--support", "/nonexistent/support",
                                     "--query", "/nonexistent/query", "--out", str(bad)],
}


@pytest.mark.parametrize("case", list(CASES))
def test_unwritable_output(inputs: dict[str, Path], capsys, case: str) -> None:
    bad = inputs["blocker"] / "result.json"
    assert main(CASES[case](inputs, bad)) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "is a file, not a folder" in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert inputs["blocker"].read_text() == "keep me\n"


def test_predict_out_of_an_unknown_kind_is_refused_first(inputs: dict[str, Path], tmp_path: Path, capsys) -> None:
    bad = tmp_path / "predictions.txt"
    assert main(CASES["predict --out"](inputs, bad)) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "unknown extension '.txt'" in err and "Traceback" not in err
    assert not bad.exists()
