"""Event scoring and the oracle dataset on a tiny synthetic set."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from stsampler.data.dataset import VideoDataset
from stsampler.data.events import EventScorer, OracleDataset, best_hit_rate
from stsampler.data.splits import load_split
from stsampler.data.synthetic import SynthConfig, generate_dataset, load_metadata
from stsampler.data.transforms import ClipTransform
from stsampler.ops.amplify import amplify_grid
from stsampler.samplers.base import SamplerOutput

CONFIG = SynthConfig(num_classes=3, videos_per_class=2, num_frames=40, fps=8, height=64, width=64, distractors=1, seed=3)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    out = generate_dataset(tmp_path_factory.mktemp("events"), CONFIG, progress=False)
    split = load_split(out / "splits", "train", out / "videos")
    return out, split, load_metadata(out)


def _batch(dataset: VideoDataset) -> dict:
    items = [dataset[i] for i in range(len(dataset))]
    return {
        "frame_indices": torch.stack([it["frame_indices"] for it in items]),
        "indices": torch.tensor([it["index"] for it in items]),
    }


def _span(metadata: dict, dataset: VideoDataset, i: int) -> tuple[int, int]:
    video = metadata["videos"][dataset.items[i].key]
    return video["event_start"], video["event_end"]


def test_hit_rate_counts_frames_inside_the_event(synth):
    _, split, metadata = synth
    dataset = VideoDataset(split.items, num_frames=40, transform=ClipTransform(64, None))
    batch = _batch(dataset)
    spans = [_span(metadata, dataset, i) for i in range(len(dataset))]
    inside = torch.tensor([[s, s + 1] for s, _ in spans])
    outside = torch.tensor([[(e + 1) % 40, (e + 2) % 40] if e + 2 < 40 else [0, 1] for _, e in spans])
    for indices, expected in ((inside, 100.0), (outside, 0.0)):
        scorer = EventScorer(dataset, metadata)
        frames = torch.zeros(len(dataset), 2, 3, 64, 64)
        scorer(batch, SimpleNamespace(sampler_output=SamplerOutput(frames=frames, indices=indices)))
        assert scorer.hit_rate == expected
        assert scorer.frames == 2 * len(dataset)


def test_magnification_is_one_without_warp_and_grows_with_a_peaked_saliency(synth):
    _, split, metadata = synth
    dataset = VideoDataset(split.items, num_frames=40, transform=ClipTransform(64, None))
    batch = _batch(dataset)
    n = len(dataset)
    starts = torch.tensor([_span(metadata, dataset, i)[0] for i in range(n)])
    indices = torch.stack([starts, starts + 1], dim=1)
    frames = torch.zeros(n, 2, 3, 64, 64)

    plain = EventScorer(dataset, metadata)
    plain(batch, SimpleNamespace(sampler_output=SamplerOutput(frames=frames, indices=indices)))
    assert plain.magnification == pytest.approx(1.0)

    saliency = torch.zeros(n, 2, 16, 16)
    for i in range(n):
        box = torch.tensor(metadata["videos"][dataset.items[i].key]["boxes"][0]) / 4  # 64 px -> 16 cells
        x0, y0, x1, y1 = box.floor().long().tolist()
        saliency[i, :, y0 : max(y1, y0 + 1), x0 : max(x1, x0 + 1)] = 1.0
    grid = amplify_grid(saliency.flatten(0, 1), (64, 64), max_zoom=4.0).unflatten(0, (n, 2))
    warped = EventScorer(dataset, metadata)
    warped(batch, SimpleNamespace(sampler_output=SamplerOutput(frames=frames, indices=indices, grid=grid)))
    assert warped.magnification > 2.0


def test_oracle_serves_event_frames_cropped_to_the_box(synth):
    _, split, metadata = synth
    oracle = OracleDataset(split.items, num_frames=4, transform=ClipTransform(32, None), metadata=metadata)
    plain = VideoDataset(split.items, num_frames=4, transform=ClipTransform(32, 64))
    item = oracle[0]
    start, end = _span(metadata, oracle, 0)
    assert item["frames"].shape == (4, 3, 32, 32) and item["frames"].dtype == torch.uint8
    assert bool(((item["frame_indices"] >= start) & (item["frame_indices"] < end)).all())
    # The event object is saturated colour; the crop holds far more of it than the whole frame.
    def colourfulness(frames: torch.Tensor) -> float:
        f = frames.float()
        return float((f.amax(dim=1) - f.amin(dim=1)).mean())
    assert colourfulness(item["frames"]) > colourfulness(plain[0]["frames"])


def test_best_hit_rate_counts_at_most_t_scanned_event_frames_per_video() -> None:
    items = [SimpleNamespace(key=f"c/v{i}") for i in range(2)]
    boxes = [[0, 0, 1, 1]] * 4
    metadata = {"videos": {
        "c/v0": {"event_start": 0, "event_end": 4, "num_frames": 16, "height": 8, "width": 8, "boxes": boxes},
        "c/v1": {"event_start": 8, "event_end": 12, "num_frames": 16, "height": 8, "width": 8, "boxes": boxes},
    }}
    # 8 scanned frames of 16 are 1, 3, ..., 15: two inside each event, so 2 of T = 4 picks at best.
    assert best_hit_rate(items, metadata, num_dense=8, num_selected=4) == 50.0
    assert best_hit_rate(items, metadata, num_dense=16, num_selected=4) == 100.0
    assert best_hit_rate(items, metadata, num_dense=4, num_selected=4) == 25.0
