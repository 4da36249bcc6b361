"""Synthetic event videos: metadata consistency, the event really is in the pixels, determinism."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from stsampler.data.splits import SPLIT_FILES, load_split, read_split_list
from stsampler.data.synthetic import (
    MAX_CLASSES,
    SynthConfig,
    class_design,
    class_name,
    generate_dataset,
    load_metadata,
    render_clip,
    sample_clip,
)
from stsampler.errors import DatasetError

CONFIG = SynthConfig(num_classes=3, videos_per_class=2, num_frames=24, fps=8, height=48, width=64, distractors=2, seed=5)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return generate_dataset(tmp_path_factory.mktemp("synth") / "out", CONFIG, progress=False)


def test_class_designs_are_distinct():
    designs = [class_design(c) for c in range(MAX_CLASSES)]
    assert len(set(designs)) == MAX_CLASSES
    first = designs[:4]
    for attr in ("shape", "colour", "motion"):
        assert len({getattr(d, attr) for d in first}) == 4
    with pytest.raises(DatasetError):
        class_design(MAX_CLASSES)


def test_layout_and_class_disjoint_splits(dataset):
    meta = load_metadata(dataset)
    assert meta["classes"] == [class_name(c) for c in range(3)]
    assert len(meta["videos"]) == 6
    classes_by_split = {}
    for split, file_name in SPLIT_FILES.items():
        entries = read_split_list(dataset / "splits" / file_name)
        classes_by_split[split] = {c for c, _ in entries}
        resolved = load_split(dataset / "splits", split, dataset / "videos")
        assert not resolved.missing and len(resolved.items) == len(entries) == 2
    assert set().union(*classes_by_split.values()) == set(meta["classes"])
    assert sum(len(c) for c in classes_by_split.values()) == 3


def test_metadata_is_consistent(dataset):
    meta = load_metadata(dataset)
    for key, video in meta["videos"].items():
        t, h, w = video["num_frames"], video["height"], video["width"]
        start, end = video["event_start"], video["event_end"]
        assert 0 <= start < end <= t
        assert end - start <= round(CONFIG.event_fraction[1] * t)
        assert len(video["boxes"]) == end - start
        for x0, y0, x1, y1 in video["boxes"]:
            assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
            assert (x1 - x0) * (y1 - y0) <= CONFIG.event_area * h * w


def test_event_is_in_the_decoded_pixels(dataset, decode_all):
    meta = load_metadata(dataset)
    for key, video in meta["videos"].items():
        class_index = meta["classes"].index(video["class"])
        spec = sample_clip(CONFIG, class_index, int(key.split("/v")[1]))
        without = render_clip(spec, CONFIG, event=False).astype(np.float32)
        decoded = decode_all(dataset / "videos" / f"{key}.mp4").astype(np.float32)
        assert decoded.shape == (CONFIG.num_frames, CONFIG.height, CONFIG.width, 3)
        start, end = video["event_start"], video["event_end"]
        for frame, (x0, y0, x1, y1) in zip(range(start, end), video["boxes"]):
            inside = np.abs(decoded[frame, y0:y1, x0:x1] - without[frame, y0:y1, x0:x1]).mean()
            assert inside > 20, f"{key} frame {frame}: the event barely changes its box"
        outside = [f for f in range(CONFIG.num_frames) if not start <= f < end]
        assert np.abs(decoded[outside] - without[outside]).mean() < 6, "frames outside the event hold it"


def test_same_seed_same_output(dataset, tmp_path):
    again = generate_dataset(tmp_path / "again", CONFIG, progress=False)
    assert load_metadata(again) == load_metadata(dataset)
    for key in load_metadata(dataset)["videos"]:
        a = (dataset / "videos" / f"{key}.mp4").read_bytes()
        b = (again / "videos" / f"{key}.mp4").read_bytes()
        assert hashlib.sha256(a).digest() == hashlib.sha256(b).digest()
    other = SynthConfig(**{**CONFIG.__dict__, "seed": 6})
    assert not np.array_equal(render_clip(sample_clip(other, 0, 0), other), render_clip(sample_clip(CONFIG, 0, 0), CONFIG))


def test_bad_config():
    with pytest.raises(DatasetError, match="even"):
        SynthConfig(height=45).validate()
    with pytest.raises(DatasetError, match="num_classes"):
        SynthConfig(num_classes=2).validate()
