"""Fault matrix, bad checkpoints: each is one line naming the file, exit 2, and nothing runs or is written."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
import torch

from stsampler.cli import main
from stsampler.config import config_from_dict, config_to_dict
from stsampler.engine.builder import build_model
from stsampler.engine.checkpoint import save_checkpoint


def _config(backbone: str = "smallcnn") -> dict:
    return config_to_dict(config_from_dict({
        "data": {"split_dir": "/nonexistent/splits", "num_frames": 4, "crop_size": 32, "resize_short": 32},
        "sampler": {"kind": "uniform", "num_frames": 2},
        "model": {"backbone": backbone, "pretrained": False},
    }))


class _Payload:
    """Unpickling it would create ``marker`` (a stand-in for any code a pickle can run)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _missing(path: Path) -> None:
    pass


def _truncated(path: Path) -> None:
    cfg = _config()
    model = build_model(config_from_dict(cfg), 2)
    save_checkpoint(path, {"config": cfg, "num_train_classes": 2, "model": model.state_dict()})
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])


def _random_bytes(path: Path) -> None:
    noise = torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    path.write_bytes(noise.numpy().tobytes())


def _other_architecture(path: Path) -> None:
    # The config says smallcnn_max, the weights are of a smallcnn with other widths.
    other = config_from_dict(_config())
    model = build_model(other, 2)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("backbone.")}
    state["backbone.trunk.0.0.weight"] = torch.zeros(8, 3, 3, 3)
    save_checkpoint(path, {"config": _config("smallcnn_max"), "num_train_classes": 2, "model": state})


def _malicious(path: Path) -> None:
    torch.save({"config": _config(), "num_train_classes": 2, "model": _Payload(path.parent / "pwned")}, path)


CASES: dict[str, tuple[Callable[[Path], None], str]] = {
    "missing": (_missing, "no checkpoint or run directory at"),
    "truncated": (_truncated, "corrupt or not a torch file"),
    "random-bytes": (_random_bytes, "corrupt or not a torch file"),
    "other-architecture": (_other_architecture, "another architecture"),
    "malicious-pickle": (_malicious, "corrupt or not a torch file"),
}


@pytest.mark.parametrize("command", ["eval", "predict"])
@pytest.mark.parametrize("case", list(CASES))
def test_bad_checkpoint(tmp_path: Path, capsys, case: str, command: str) -> None:
    make, reason = CASES[case]
    checkpoint = tmp_path / "model.pt"
    make(checkpoint)
    before = checkpoint.read_bytes() if checkpoint.exists() else None
    out = tmp_path / "out.json"
    argv = {
        "eval": ["eval", str(checkpoint), "--out", str(out)],
        "predict": [
            "predict", str(checkpoint), "--support", str(tmp_path), "--query", str(tmp_path), "--out", str(out)
        ],
    }[command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert str(checkpoint) in err and reason in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "pwned").exists(), "unpickling ran code from the checkpoint"
    assert not out.exists()
    assert (checkpoint.read_bytes() if checkpoint.exists() else None) == before
