"""Shared fixtures of the engine tests: a tiny synthetic video set and a config for it."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from stsampler.config import Config, config_from_dict
from stsampler.data.synthetic import SynthConfig, generate_dataset


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 classes x 6 videos of 24 frames at 48 px; a big, long event; train/val/test = 4/3/3 classes."""
    out = tmp_path_factory.mktemp("synth")
    config = SynthConfig(
        num_classes=10, videos_per_class=6, num_frames=24, height=48, width=48,
        event_fraction=(0.6, 0.9), event_area=0.45, distractors=0, seed=0, split_fractions=(0.4, 0.3, 0.3),
    )
    return generate_dataset(out, config, workers=1, progress=False)


def _tiny_config(root: Path, **sections: dict) -> Config:
    values: dict = {
        "name": "tiny",
        "data": {"split_dir": str(root / "splits"), "data_root": str(root / "videos"), "num_frames": 8,
                 "crop_size": 32, "resize_short": 40, "workers": 0},
        "sampler": {"kind": "uniform", "num_frames": 4, "scanner_pretrained": False, "scan_size": 32,
                    "num_samples": 16},
        "model": {"backbone": "smallcnn", "pretrained": False, "head": "protonet"},
        "train": {"way": 3, "shot": 1, "query": 2, "episodes": 8, "tasks_per_batch": 2, "optimizer": "adamw",
                  "lr": 3e-3, "weight_decay": 0.0, "amp": "none", "device": "cpu", "val_every": 1000,
                  "val_episodes": 0, "ckpt_every": 1000, "log_every": 1, "seed": 0},
        "eval": {"query": 1, "episodes": 6, "seed": 0},
    }
    for section, changes in sections.items():
        values[section] = {**values.get(section, {}), **changes}
    return config_from_dict(values)


@pytest.fixture(scope="session")
def tiny_config(synth_root: Path) -> Callable[..., Config]:
    """``tiny_config(**sections)``: a CPU-sized config over the synthetic set (3-way 1-shot, smallcnn,
    uniform sampler, no validation), each keyword a section whose keys replace the defaults."""
    return lambda **sections: _tiny_config(synth_root, **sections)
