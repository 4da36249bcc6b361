"""Synthetic event videos: metadata consistency, the event really is in the pixels, determinism."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from stsampler.cli import main
from stsampler.data.splits import SPLIT_FILES, load_split, read_split_list
from stsampler.data.synthetic import (
    MAX_CLASSES,
    SynthConfig,
    box_side_range,
    class_design,
    class_name,
    event_boxes,
    generate_dataset,
    load_metadata,
    render_clip,
    sample_clip,
)
from stsampler.errors import DatasetError

CONFIG = SynthConfig(
    num_classes=3, videos_per_class=2, num_frames=24, fps=8, height=48, width=64, distractors=2, seed=5
)


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
    for video in meta["videos"].values():
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
        for frame, (x0, y0, x1, y1) in zip(range(start, end), video["boxes"], strict=True):
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
    assert not np.array_equal(
        render_clip(sample_clip(other, 0, 0), other), render_clip(sample_clip(CONFIG, 0, 0), CONFIG)
    )


def test_bad_config():
    with pytest.raises(DatasetError, match="even"):
        SynthConfig(height=45).validate()
    with pytest.raises(DatasetError, match="num_classes"):
        SynthConfig(num_classes=2).validate()
    with pytest.raises(DatasetError, match="event_area_min"):
        SynthConfig(event_area=0.02, event_area_min=0.03).validate()
    with pytest.raises(DatasetError, match="widen"):
        SynthConfig(height=64, width=64, event_area=0.015, event_area_min=0.014).validate()


def _full_size_box(boxes: list[list[int]]) -> tuple[int, int]:
    """(width, height) of the largest of an event's per-frame boxes (the object at full size)."""
    return max(((x1 - x0, y1 - y0) for x0, y0, x1, y1 in boxes), key=lambda wh: wh[0] * wh[1])


def test_event_area_range_holds_for_every_shape_and_motion():
    config = SynthConfig(
        num_classes=16, num_frames=96, height=128, width=128, event_fraction=(0.1, 0.15),
        event_area=0.015, event_area_min=0.01, seed=2,
    )
    config.validate()
    frame = config.height * config.width
    areas = []
    for c in range(config.num_classes):
        for v in range(6):
            spec = sample_clip(config, c, v)
            assert round(0.1 * 96) <= spec.event_end - spec.event_start <= round(0.15 * 96)
            boxes = event_boxes(spec, config)
            assert max((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in boxes) <= 0.015 * frame
            width, height = _full_size_box(boxes)
            slack = 1 if class_design(c).shape == "triangle" else 0
            assert min(width, height) >= np.sqrt(0.01 * frame) - slack
            areas.append(width * height / frame)
    assert min(areas) < 0.0115 and max(areas) > 0.0135, "the drawn areas do not spread over the range"


def test_event_area_range_leaves_the_other_draws_alone():
    legacy = SynthConfig(num_frames=48, height=96, width=96, event_area=0.05)
    ranged = SynthConfig(num_frames=48, height=96, width=96, event_area=0.05, event_area_min=0.02)
    a, b = sample_clip(legacy, 3, 1), sample_clip(ranged, 3, 1)
    assert a.size != b.size
    assert (a.event_start, a.background, a.distractors) == (b.event_start, b.background, b.distractors)
    assert box_side_range(ranged) == pytest.approx((np.sqrt(0.02 * 96 * 96) + 1, np.sqrt(0.05 * 96 * 96) - 1))


def test_synth_flags_reach_the_metadata(tmp_path):
    out = tmp_path / "flags"
    args = [
        "synth", str(out), "--classes", "4", "--videos-per-class", "3", "--frames", "40", "--size", "64",
        "--fps", "10", "--distractors", "0", "--event-fraction", "0.2", "0.3", "--event-area", "0.04", "0.08",
        "--seed", "1", "--workers", "1",
    ]
    assert main(args) == 0
    meta = load_metadata(out)
    config = meta["config"]
    assert (config["num_classes"], config["videos_per_class"], config["num_frames"]) == (4, 3, 40)
    assert (config["height"], config["width"], config["fps"], config["distractors"]) == (64, 64, 10, 0)
    assert tuple(config["event_fraction"]) == (0.2, 0.3)
    assert (config["event_area_min"], config["event_area"]) == (0.04, 0.08)
    for video in meta["videos"].values():
        assert video["fps"] == 10
        assert 8 <= video["event_end"] - video["event_start"] <= 12
        width, height = _full_size_box(video["boxes"])
        slack = 1 if class_design(video["label"]).shape == "triangle" else 0
        assert np.sqrt(0.04 * 64 * 64) - slack <= min(width, height)
        assert width * height <= 0.08 * 64 * 64
