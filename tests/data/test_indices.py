"""Frame-index helpers: TSN segment sampling and the batched picks of T of M dense frames."""
from __future__ import annotations

import math

import pytest
import torch

from stsampler.data.indices import (
    jittered_indices,
    segment_indices,
    spread_indices,
    uniform_indices,
)

CASES = [(300, 16), (250, 8), (16, 16), (17, 16), (100, 3), (1000, 32), (33, 7)]


@pytest.mark.parametrize("num_frames,count", CASES)
@pytest.mark.parametrize("random", [False, True])
def test_shape_dtype_range_ascending(num_frames, count, random):
    idx = segment_indices(num_frames, count, random=random, generator=torch.Generator().manual_seed(0))
    assert idx.dtype == torch.int64 and idx.shape == (count,)
    assert int(idx.min()) >= 0 and int(idx.max()) < num_frames
    assert bool((idx[1:] >= idx[:-1]).all())
    if num_frames >= count:
        assert len(set(idx.tolist())) == count  # one distinct frame per segment


@pytest.mark.parametrize("num_frames,count", CASES)
def test_test_mode_takes_segment_centres(num_frames, count):
    idx = segment_indices(num_frames, count).tolist()
    seg = num_frames / count
    assert idx == [math.floor((i + 0.5) * seg) for i in range(count)]
    assert segment_indices(10, 5).tolist() == [1, 3, 5, 7, 9]
    assert segment_indices(8, 1).tolist() == [4]


@pytest.mark.parametrize("num_frames,count", CASES)
def test_training_draws_one_point_inside_each_segment(num_frames, count):
    gen = torch.Generator().manual_seed(1)
    seen = set()
    for _ in range(50):
        idx = segment_indices(num_frames, count, random=True, generator=gen).tolist()
        for i, frame in enumerate(idx):
            # segment i = [floor(i * n / count), floor((i + 1) * n / count))
            assert i * num_frames // count <= frame < (i + 1) * num_frames // count
        seen.add(tuple(idx))
    if num_frames >= 2 * count:
        assert len(seen) > 1  # really random


def test_training_can_draw_every_frame():
    gen = torch.Generator().manual_seed(4)
    draws = torch.cat([segment_indices(37, 5, random=True, generator=gen) for _ in range(500)])
    assert set(draws.tolist()) == set(range(37))


def test_training_covers_each_segment_uniformly():
    gen = torch.Generator().manual_seed(2)
    draws = torch.stack([segment_indices(40, 4, random=True, generator=gen) for _ in range(4000)])
    first = torch.bincount(draws[:, 0], minlength=10)[:10].float()
    assert int(draws[:, 0].max()) <= 9
    assert bool((first > 0.07 * 4000).all()) and bool((first < 0.13 * 4000).all())


def test_deterministic_per_seed():
    a = segment_indices(500, 16, random=True, generator=torch.Generator().manual_seed(7))
    b = segment_indices(500, 16, random=True, generator=torch.Generator().manual_seed(7))
    c = segment_indices(500, 16, random=True, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    torch.manual_seed(3)
    d = segment_indices(500, 16, random=True)
    torch.manual_seed(3)
    assert torch.equal(d, segment_indices(500, 16, random=True))


@pytest.mark.parametrize("random", [False, True])
def test_short_videos_repeat_indices(random):
    idx = segment_indices(5, 16, random=random, generator=torch.Generator().manual_seed(0))
    assert idx.shape == (16,)
    assert set(idx.tolist()) <= set(range(5))
    assert bool((idx[1:] >= idx[:-1]).all())
    if not random:
        assert set(idx.tolist()) == set(range(5))  # every frame used, some twice or more
    assert segment_indices(1, 8, random=random).tolist() == [0] * 8


def test_invalid_arguments():
    with pytest.raises(ValueError):
        segment_indices(0, 8)
    with pytest.raises(ValueError):
        segment_indices(-3, 8)
    with pytest.raises(ValueError):
        segment_indices(10, 0)


def test_spread_indices() -> None:
    pushed = spread_indices(torch.tensor([[3, 3, 3, 3], [0, 0, 7, 7], [1, 2, 5, 6]]), 8)
    assert pushed.tolist() == [[3, 4, 5, 6], [0, 1, 6, 7], [1, 2, 5, 6]]
    assert spread_indices(torch.tensor([[0, 2, 5, 5]]), 3).tolist() == [[0, 2, 2, 2]]


def test_jittered_indices_take_one_frame_per_segment() -> None:
    draws = jittered_indices(16, 4, 200, torch.Generator().manual_seed(0))
    segment = draws // 4
    assert draws.shape == (200, 4) and torch.equal(segment, torch.arange(4).expand(200, 4))
    assert all(torch.unique(draws[:, t]).numel() == 4 for t in range(4))  # every frame of a segment is drawn
    again = jittered_indices(16, 4, 200, torch.Generator().manual_seed(0))
    assert torch.equal(draws, again)
    assert jittered_indices(5, 3, 50, torch.Generator().manual_seed(1)).max() <= 4


def test_uniform_indices_are_segment_centres_per_row() -> None:
    indices = uniform_indices(16, 4, 3)
    assert indices.tolist() == [[2, 6, 10, 14]] * 3 and indices.dtype == torch.int64
