"""Training-free samplers: uniform, random, motion-guided."""
from __future__ import annotations

import torch

from stsampler.samplers.baselines import MotionSampler, RandomSampler, UniformSampler

B, M, T = 6, 8, 4


def clips(m: int = M, seed: int = 0) -> torch.Tensor:
    return torch.randn(B, m, 3, 16, 16, generator=torch.Generator().manual_seed(seed))


def check_gathered(x: torch.Tensor, out_frames: torch.Tensor, indices: torch.Tensor) -> None:
    assert indices.dtype == torch.int64 and indices.shape == (B, T)
    assert out_frames.shape == (B, T, *x.shape[2:])
    for b in range(B):
        torch.testing.assert_close(out_frames[b], x[b, indices[b]])


def test_uniform_segment_centres() -> None:
    x = clips()
    out = UniformSampler(T)(x, torch.zeros(B, dtype=torch.bool))
    assert out.indices.tolist() == [[1, 3, 5, 7]] * B
    check_gathered(x, out.frames, out.indices)
    assert UniformSampler(T).feature_dim == 0 and out.indicator is None


def test_random_is_seeded_sorted_distinct() -> None:
    x = clips(m=16)
    first = RandomSampler(T, seed=3)(x, torch.zeros(B, dtype=torch.bool))
    again = RandomSampler(T, seed=3)(x, torch.zeros(B, dtype=torch.bool))
    other = RandomSampler(T, seed=4)(x, torch.zeros(B, dtype=torch.bool))
    torch.testing.assert_close(first.indices, again.indices)
    assert not torch.equal(first.indices, other.indices)
    assert torch.all(first.indices[:, 1:] > first.indices[:, :-1])
    assert first.indices.min() >= 0 and first.indices.max() < 16
    check_gathered(x, first.frames, first.indices)


def test_random_with_fewer_frames_than_t() -> None:
    out = RandomSampler(T, seed=0)(clips(m=2), torch.zeros(B, dtype=torch.bool))
    assert out.indices.shape == (B, T) and out.indices.max() <= 1
    assert torch.all(out.indices[:, 1:] >= out.indices[:, :-1])


def test_motion_picks_frames_where_motion_is() -> None:
    m = 32
    gen = torch.Generator().manual_seed(5)
    static = torch.randn(B, 1, 3, 16, 16, generator=gen).expand(B, m, 3, 16, 16).clone()
    static[:, 20:28] = torch.randn(B, 8, 3, 16, 16, generator=gen)
    out = MotionSampler(T)(static, torch.zeros(B, dtype=torch.bool))
    assert out.indices.shape == (B, T)
    assert torch.all(out.indices[:, 1:] > out.indices[:, :-1])
    assert torch.all((out.indices >= 20) & (out.indices <= 28)), out.indices
    check_gathered(static, out.frames, out.indices)


def test_motion_on_static_clip_is_uniform() -> None:
    still = torch.ones(B, 16, 3, 8, 8)
    out = MotionSampler(T)(still, torch.zeros(B, dtype=torch.bool))
    uniform = UniformSampler(T)(still, torch.zeros(B, dtype=torch.bool)).indices
    assert (out.indices - uniform).abs().max() <= 1
