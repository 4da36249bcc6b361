"""Tests of the inverse-CDF spatial amplification."""
from __future__ import annotations

import pytest
import torch

from stsampler.ops.amplify import _cap_mass, amplify, amplify_grid, sample_by_grid


def _peaked(n: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    """Saliency ``[n, h, w]``: small random background plus one strong 2x2 blob per map."""
    gen = torch.Generator().manual_seed(seed)
    s = 0.05 * torch.rand(n, h, w, generator=gen)
    for i in range(n):
        r, c = 2 + 3 * i % (h - 4), 1 + 5 * i % (w - 3)
        s[i, r : r + 2, c : c + 2] += 1.0
    return s


@pytest.mark.parametrize("fill", [0.0, 1.0, 0.37])
def test_constant_saliency_reproduces_the_frame(fill: float) -> None:
    frames = torch.rand(3, 3, 30, 40, generator=torch.Generator().manual_seed(1))
    out = amplify(frames, torch.full((3, 16, 16), fill))
    assert out.shape == frames.shape
    assert (out - frames).abs().max() < 1e-5


def test_grid_is_monotone_separable_and_inside_the_frame() -> None:
    grid = amplify_grid(_peaked(4, 16, 16), (24, 32))
    assert grid.shape == (4, 24, 32, 2)
    assert grid.min() >= -1.0 and grid.max() <= 1.0
    x, y = grid[..., 0], grid[..., 1]
    assert (x[:, :, 1:] >= x[:, :, :-1]).all()
    assert (y[:, 1:, :] >= y[:, :-1, :]).all()
    # Separable: x depends on the column only, y on the row only.
    assert torch.equal(x, x[:, :1, :].expand_as(x))
    assert torch.equal(y, y[:, :, :1].expand_as(y))


@pytest.mark.parametrize("max_zoom", [1.5, 2.0, 4.0])
def test_zoom_cap_holds_for_a_peaked_saliency(max_zoom: float) -> None:
    size = 64
    saliency = torch.zeros(2, 16, 16)
    saliency[0, 7, 7] = 1.0  # a single hot cell: uncapped it would take all output pixels
    saliency[1] = _peaked(1, 16, 16)[0]
    grid = amplify_grid(saliency, (size, size), max_zoom=max_zoom)
    for coords in (grid[:, 0, :, 0], grid[:, :, 0, 1]):
        # Output step per pixel is 2 / size in the identity; the input step is the difference of
        # normalised coordinates. Magnification = identity step / actual step.
        step = coords[:, 1:] - coords[:, :-1]
        magnification = (2.0 / size) / step
        assert magnification.max() <= max_zoom * (1 + 1e-4)
        # The cap is reached: the hot region is magnified as much as allowed.
        assert magnification.max() >= max_zoom * 0.99


def test_peaked_saliency_magnifies_the_salient_region() -> None:
    h = w = 16
    size = 64
    saliency = torch.zeros(1, h, w)
    saliency[0, 4:8, 10:14] = 1.0  # rows 4..7, columns 10..13: a quarter of each axis
    grid = amplify_grid(saliency, (size, size), max_zoom=4.0)
    x = (grid[0, 0, :, 0] + 1) * w / 2  # cell coordinate sampled by each output column
    y = (grid[0, :, 0, 1] + 1) * h / 2
    columns_on_region = ((x >= 10) & (x < 14)).sum().item()
    rows_on_region = ((y >= 4) & (y < 8)).sum().item()
    # Uniform sampling would give the region a quarter of the pixels (16 of 64).
    assert columns_on_region > 2 * 16
    assert rows_on_region > 2 * 16


def test_all_zero_and_constant_give_the_identity_grid() -> None:
    identity = torch.nn.functional.affine_grid(
        torch.eye(2, 3).expand(2, 2, 3), [2, 1, 8, 12], align_corners=False
    )
    for saliency in (torch.zeros(2, 4, 6), torch.ones(2, 4, 6)):
        torch.testing.assert_close(amplify_grid(saliency, (8, 12)), identity, atol=1e-6, rtol=0)


def test_gradcheck_wrt_saliency() -> None:
    saliency = (_peaked(2, 5, 6, seed=3).double() + 0.1 * torch.rand(2, 5, 6, dtype=torch.float64))
    saliency.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda s: amplify_grid(s, (7, 9), max_zoom=2.0), (saliency,))
    frames = torch.rand(2, 2, 7, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    assert torch.autograd.gradcheck(lambda s: amplify(frames, s, max_zoom=2.0), (saliency,))


def test_gradient_flows_to_frames_and_saliency() -> None:
    frames = torch.rand(2, 3, 16, 16, requires_grad=True)
    saliency = _peaked(2, 8, 8).requires_grad_(True)
    amplify(frames, saliency).square().sum().backward()
    assert frames.grad is not None and frames.grad.abs().sum() > 0
    assert saliency.grad is not None and saliency.grad.abs().sum() > 0


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_reduced_precision_frames(dtype: torch.dtype) -> None:
    frames = torch.rand(2, 3, 20, 20, generator=torch.Generator().manual_seed(5))
    saliency = _peaked(2, 16, 16)
    reference = amplify(frames, saliency)
    out = amplify(frames.to(dtype), saliency)
    assert out.dtype == dtype
    torch.testing.assert_close(out.float(), reference, atol=1e-2, rtol=0)


def test_argument_validation() -> None:
    frames = torch.rand(2, 3, 8, 8)
    with pytest.raises(ValueError, match="saliency"):
        amplify(frames, torch.rand(3, 4, 4))
    with pytest.raises(ValueError, match="frames"):
        amplify(frames[0], torch.rand(2, 4, 4))
    with pytest.raises(ValueError, match="max_zoom"):
        amplify(frames, torch.rand(2, 4, 4), max_zoom=0.5)
    with pytest.raises(ValueError, match="out_size"):
        amplify_grid(torch.rand(2, 4, 4), (0, 8))
    with pytest.raises(ValueError, match="frames"):
        sample_by_grid(frames[0], amplify_grid(torch.rand(2, 4, 4), (8, 8)))
    with pytest.raises(ValueError, match=r"grid must be \[N=2, H=8, W=8, 2\]"):
        sample_by_grid(frames, amplify_grid(torch.rand(2, 4, 4), (8, 6)))


def test_cap_equals_the_limit_of_iterative_clipping() -> None:
    gen = torch.Generator().manual_seed(6)
    p = torch.softmax(3 * torch.randn(50, 16, generator=gen, dtype=torch.float64), dim=-1)
    cap = 3.0 / 16
    iterated = p.clone()
    for _ in range(2000):  # the spec's procedure: clip, spread the clipped mass over all cells
        excess = (iterated - cap).clamp_min(0).sum(dim=-1, keepdim=True)
        iterated = iterated.clamp_max(cap) + excess / 16
    capped = _cap_mass(p, 3.0)
    torch.testing.assert_close(capped, iterated, atol=1e-9, rtol=0)
    assert capped.max() <= cap + 1e-12
    torch.testing.assert_close(capped.sum(dim=-1), torch.ones(50, dtype=torch.float64))
