"""Saliency variants and the spatial amplifier."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from stsampler.errors import ConfigError
from stsampler.ops.amplify import amplify, sample_by_grid
from stsampler.ops.encoding import minmax_normalise
from stsampler.samplers.amplifier import SpatialAmplifier, saliency_code, saliency_paper

CHANNELS = (4, 6, 8)


def make_maps(n: int = 6, seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(n, c, s, s, generator=gen) for c, s in zip(CHANNELS, (16, 8, 4), strict=True)]


def check_unit_range(s: torch.Tensor, n: int) -> None:
    assert s.shape == (n, 16, 16)
    assert torch.all(s >= 0) and torch.all(s <= 1)
    torch.testing.assert_close(s.flatten(1).amax(dim=1), torch.ones(n), atol=1e-4, rtol=0)


def test_code_saliency() -> None:
    maps = make_maps()
    s = saliency_code(maps)
    check_unit_range(s, 6)
    means = [m.mean(1, keepdim=True) for m in maps]
    up = [F.interpolate(m, (16, 16), mode="bilinear", align_corners=False) for m in means]
    torch.testing.assert_close(s, minmax_normalise(torch.cat(up, 1).mean(1), dims=(1, 2)))


def test_paper_saliency_matches_formula() -> None:
    maps = make_maps()
    c = sum(CHANNELS)
    w_s = torch.randn(c, generator=torch.Generator().manual_seed(1))
    s = saliency_paper(maps, w_s)
    check_unit_range(s, 6)
    feats = torch.cat([F.interpolate(m, (16, 16), mode="bilinear", align_corners=False) for m in maps], 1)
    feats = feats.flatten(2)
    alpha = torch.softmax(feats @ feats.transpose(1, 2) / math.sqrt(256), dim=-1)
    attended = alpha @ feats
    expected = (w_s[None, :, None] * attended).sum(1) / c
    expected = minmax_normalise(expected.view(6, 16, 16), dims=(1, 2))
    torch.testing.assert_close(s, expected, atol=1e-5, rtol=1e-4)


def test_paper_saliency_per_video_weights() -> None:
    maps = make_maps(n=6)
    w_s = torch.randn(2, sum(CHANNELS), generator=torch.Generator().manual_seed(2))
    grouped = saliency_paper(maps, w_s)
    per_frame = saliency_paper(maps, w_s.repeat_interleave(3, dim=0))
    torch.testing.assert_close(grouped, per_frame)
    assert not torch.allclose(grouped, saliency_paper(maps, w_s[0]))


def test_w_s_changes_saliency() -> None:
    maps = make_maps()
    gen = torch.Generator().manual_seed(3)
    a = saliency_paper(maps, torch.randn(sum(CHANNELS), generator=gen))
    b = saliency_paper(maps, torch.randn(sum(CHANNELS), generator=gen))
    assert (a - b).abs().max() > 1e-2


def test_gradient_reaches_w_s_through_amplify() -> None:
    amplifier = SpatialAmplifier(sum(CHANNELS), "paper", max_zoom=4.0)
    maps = make_maps(n=2)
    frames = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    warped, grid = amplifier(frames, amplifier.saliency(maps))
    assert warped.shape == frames.shape and grid.shape == (2, 32, 32, 2)
    assert not grid.requires_grad and grid.abs().max() <= 1
    (warped * torch.randn_like(warped)).sum().backward()
    assert amplifier.w_s.grad is not None and amplifier.w_s.grad.abs().sum() > 0


def test_amplifier_warps_by_the_grid_it_returns() -> None:
    amplifier = SpatialAmplifier(sum(CHANNELS), "code", max_zoom=4.0)
    frames = torch.randn(3, 3, 24, 24, generator=torch.Generator().manual_seed(5))
    saliency = amplifier.saliency(make_maps(n=3))
    warped, grid = amplifier(frames, saliency)
    torch.testing.assert_close(warped, amplify(frames, saliency, max_zoom=4.0), atol=0, rtol=0)
    torch.testing.assert_close(sample_by_grid(frames, grid), warped, atol=0, rtol=0)
    assert not torch.allclose(warped, frames, atol=1e-3)


def test_code_variant_has_no_parameters() -> None:
    amplifier = SpatialAmplifier(sum(CHANNELS), "code", max_zoom=4.0)
    assert not amplifier.needs_weights and len(list(amplifier.parameters())) == 0
    torch.testing.assert_close(amplifier.saliency(make_maps()), saliency_code(make_maps()))


def test_unknown_variant() -> None:
    with pytest.raises(ConfigError):
        SpatialAmplifier(8, "other", max_zoom=4.0)
