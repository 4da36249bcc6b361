"""EventScorer: temporal hit rate and event magnification on a tiny synthetic set."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from stsampler.data.dataset import VideoDataset
from stsampler.data.transforms import ClipTransform
from stsampler.engine.metrics import EventScorer
from stsampler.ops.amplify import amplify_grid
from stsampler.samplers.base import SamplerOutput


def _batch(dataset: VideoDataset) -> dict:
    items = [dataset[i] for i in range(len(dataset))]
    return {
        "frame_indices": torch.stack([it["frame_indices"] for it in items]),
        "indices": torch.tensor([it["index"] for it in items]),
    }


def _span(metadata: dict, dataset: VideoDataset, i: int) -> tuple[int, int]:
    video = metadata["videos"][dataset.items[i].key]
    return video["event_start"], video["event_end"]


def test_hit_rate_counts_frames_inside_the_event(event_videos):
    _, split, metadata = event_videos
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
        classes = sorted({item.class_name for item in dataset.items})
        assert scorer.per_class_hit_rate == {name: expected for name in classes}


def test_per_class_hit_rate_counts_each_class_apart(event_videos):
    _, split, metadata = event_videos
    dataset = VideoDataset(split.items, num_frames=40, transform=ClipTransform(64, None))
    batch = _batch(dataset)
    names = [item.class_name for item in dataset.items]
    first = names[0]
    picks = []
    for i in range(len(dataset)):  # the first class's videos inside their event, every other video outside it
        start, end = _span(metadata, dataset, i)
        picks.append([start, start + 1] if names[i] == first else ([end, end + 1] if end + 1 < 40 else [0, 1]))
    scorer = EventScorer(dataset, metadata)
    frames = torch.zeros(len(dataset), 2, 3, 64, 64)
    scorer(batch, SimpleNamespace(sampler_output=SamplerOutput(frames=frames, indices=torch.tensor(picks))))
    rates = scorer.per_class_hit_rate
    assert rates[first] == 100.0 and set(rates) == set(names)
    assert all(rate == 0.0 for name, rate in rates.items() if name != first)
    share = names.count(first) / len(names)
    assert scorer.hit_rate == pytest.approx(100.0 * share)


def test_magnification_is_one_without_warp_and_grows_with_a_peaked_saliency(event_videos):
    _, split, metadata = event_videos
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
