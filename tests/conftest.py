"""Fixtures shared by test folders."""
from __future__ import annotations

import pytest

from stsampler.data.splits import load_split
from stsampler.data.synthetic import SynthConfig, generate_dataset, load_metadata

EVENT_VIDEOS = SynthConfig(
    num_classes=3, videos_per_class=2, num_frames=40, fps=8, height=64, width=64, distractors=1, seed=3
)


@pytest.fixture(scope="session")
def event_videos(tmp_path_factory):
    """A tiny synthetic dataset with known events: ``(folder, train split, metadata)``."""
    out = generate_dataset(tmp_path_factory.mktemp("events"), EVENT_VIDEOS, progress=False)
    return out, load_split(out / "splits", "train", out / "videos"), load_metadata(out)
