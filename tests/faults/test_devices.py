"""Fault matrix, absent devices: one line naming the setting, exit 2, before anything is read or written."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from stsampler.cli import main
from stsampler.config import config_from_dict, save_config

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")


def _train_argv(tmp_path: Path, device: str) -> list[str]:
    cfg = config_from_dict({
        "data": {"split_dir": "/nonexistent/splits", "num_frames": 4, "crop_size": 32, "resize_short": 32},
        "sampler": {"kind": "uniform", "num_frames": 2},
        "model": {"backbone": "smallcnn", "pretrained": False},
    })
    config = save_config(cfg, tmp_path / "run.yaml")
    return ["train", str(config), f"train.device={device}", "--run-dir", str(tmp_path / "run")]


def _predict_argv(tmp_path: Path, device: str) -> list[str]:
    return ["predict", str(tmp_path / "no-model.pt"), "--support", str(tmp_path), "--query", str(tmp_path),
            "--device", device]


CASES = {
    "train.device=cuda": pytest.param(_train_argv, "cuda", "train.device='cuda'", marks=NO_CUDA),
    "train.device=foo": pytest.param(_train_argv, "foo", "train.device='foo'"),
    "predict --device cuda": pytest.param(_predict_argv, "cuda", "--device='cuda'", marks=NO_CUDA),
    "predict --device foo": pytest.param(_predict_argv, "foo", "--device='foo'"),
}


@pytest.mark.parametrize("argv, device, named", list(CASES.values()), ids=list(CASES))
def test_absent_device(tmp_path: Path, capsys, argv, device: str, named: str) -> None:
    assert main(argv(tmp_path, device)) == 2
    err = capsys.readouterr().err
    assert named in err and "cpu" in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()
