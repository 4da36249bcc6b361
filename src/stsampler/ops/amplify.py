"""Spatial amplification by separable inverse-CDF sampling (``docs/method.md`` section 4).

Each frame is resampled so that columns (rows) with more saliency take more output pixels. Shapes:
N frames, C channels, H x W frame and output size, h x w saliency size.

Per axis: the marginal (max of the saliency over the other axis) is normalised to a distribution p
over cells (all-zero -> uniform), capped so that no cell holds more than ``max_zoom / cells`` of the
mass, and turned into a piecewise-linear CDF over the continuous cell coordinate; output pixel u
samples the input at ``C^-1((u + 0.5) / W)``. A uniform distribution reproduces ``grid_sample``'s
pixel centres exactly, so a constant saliency map returns the frame unchanged. Everything is
differentiable w.r.t. the saliency (the search for the crossing cell is not, the interpolation is).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _cap_mass(p: torch.Tensor, max_zoom: float) -> torch.Tensor:
    """Cap a distribution ``p [..., n]`` at ``max_zoom / n`` per cell: returns ``[..., n]``.

    The spec's procedure (clip every cell at the cap, spread the clipped mass uniformly over all
    cells, repeat) converges to ``q = min(cap, p + t)`` with the shift ``t >= 0`` that makes q sum to 1:
    capped cells stay at the cap and every other cell has received the same total ``t``. This
    computes that limit exactly in one vectorised step. With the i largest cells capped the sum is
    ``g_i(t) = i cap + S_i + (n - i) t`` (S_i: sum of the other cells); the sum of
    ``min(cap, p + t)`` is ``min_i g_i(t)``, each ``g_i`` increasing, so the solution of
    ``min_i g_i(t) = 1`` is ``t = max_i t_i`` with ``g_i(t_i) = 1``. The cap then holds exactly.
    """
    n = p.shape[-1]
    cap = max_zoom / n
    descending = p.sort(dim=-1, descending=True).values
    rest = descending.flip(-1).cumsum(-1).flip(-1)
    capped = torch.arange(n, device=p.device, dtype=p.dtype)
    shifts = (1.0 - capped * cap - rest) / (n - capped)
    shift = shifts.amax(dim=-1, keepdim=True)
    return torch.minimum(p + shift, torch.full_like(p, cap))


def _marginal(m: torch.Tensor) -> torch.Tensor:
    """Normalise a non-negative marginal ``[N, n]`` to sum 1 per row (all-zero -> uniform)."""
    total = m.sum(dim=-1, keepdim=True)
    uniform = torch.full_like(m, 1.0 / m.shape[-1])
    return torch.where(total > 0, m / total.clamp_min(torch.finfo(m.dtype).tiny), uniform)


def _inverse_cdf(p: torch.Tensor, size: int) -> torch.Tensor:
    """Normalised sampling coordinates ``[N, size]`` in [-1, 1] for a distribution ``p [N, n]``.

    ``x_u = C^-1((u + 0.5) / size)`` with C the piecewise-linear CDF over cell coordinates [0, n],
    returned as ``2 x_u / n - 1``.
    """
    n = p.shape[-1]
    cdf = torch.cat([torch.zeros_like(p[:, :1]), p.cumsum(dim=-1)], dim=-1)
    targets = (torch.arange(size, device=p.device, dtype=p.dtype) + 0.5) / size
    targets = targets.expand(p.shape[0], size).contiguous()
    # Largest j with C(j) <= target: cell j then has positive mass unless clamped at the last cell.
    cell = (torch.searchsorted(cdf.detach(), targets, right=True) - 1).clamp(0, n - 1)
    start = cdf.gather(1, cell)
    mass = p.gather(1, cell).clamp_min(torch.finfo(p.dtype).tiny)
    offset = ((targets - start) / mass).clamp(0.0, 1.0)
    return 2.0 * (cell.to(p.dtype) + offset) / n - 1.0


def amplify_grid(
    saliency: torch.Tensor, out_size: tuple[int, int], max_zoom: float = 4.0
) -> torch.Tensor:
    """Sampling grid of the amplification, for ``F.grid_sample(..., align_corners=False)``.

    Args:
        saliency: ``[N, h, w]``, values >= 0 (negative values count as 0). Any float dtype; the grid
            is computed in float32 (float64 if the saliency is float64).
        out_size: ``(H, W)`` of the output.
        max_zoom: upper bound (>= 1) on the local magnification along each axis.

    Returns:
        ``[N, H, W, 2]``: ``grid[n, v, u] = (x_u, y_v)`` in [-1, 1], x from the column marginal, y
        from the row marginal, each monotone non-decreasing. Differentiable w.r.t. ``saliency``.
    """
    if saliency.dim() != 3:
        raise ValueError(f"saliency must be [N, h, w], got shape {tuple(saliency.shape)}")
    height, width = out_size
    if height < 1 or width < 1:
        raise ValueError(f"out_size must be positive, got {out_size}")
    if not max_zoom >= 1.0:
        raise ValueError(f"max_zoom must be >= 1, got {max_zoom}")
    dtype = torch.promote_types(saliency.dtype, torch.float32)
    s = saliency.to(dtype).clamp_min(0.0)
    p_x = _cap_mass(_marginal(s.amax(dim=1)), max_zoom)
    p_y = _cap_mass(_marginal(s.amax(dim=2)), max_zoom)
    gx = _inverse_cdf(p_x, width)
    gy = _inverse_cdf(p_y, height)
    n = s.shape[0]
    return torch.stack(
        [gx[:, None, :].expand(n, height, width), gy[:, :, None].expand(n, height, width)], dim=-1
    )


def _check_frames(frames: torch.Tensor) -> None:
    """Raise ValueError unless ``frames`` is ``[N, C, H, W]``."""
    if frames.dim() != 4:
        raise ValueError(f"frames must be [N, C, H, W], got shape {tuple(frames.shape)}")


def sample_by_grid(frames: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Resample frames ``[N, C, H, W]`` at an amplification grid ``[N, H, W, 2]`` (:func:`amplify_grid`).

    Returns ``[N, C, H, W]`` in ``frames.dtype``: bilinear samples with border padding, differentiable
    w.r.t. ``frames`` and ``grid``. Half-precision frames are sampled in float32 (a bfloat16 grid
    would misplace samples by up to half a pixel at 224) and the result cast back.
    """
    _check_frames(frames)
    n, _, height, width = frames.shape
    if grid.shape != (n, height, width, 2):
        raise ValueError(
            f"grid must be [N={n}, H={height}, W={width}, 2] for frames of shape {tuple(frames.shape)}, "
            f"got shape {tuple(grid.shape)}"
        )
    dtype = torch.promote_types(frames.dtype, torch.float32)
    out = F.grid_sample(
        frames.to(dtype), grid.to(dtype), mode="bilinear", padding_mode="border", align_corners=False
    )
    return out.to(frames.dtype)


def amplify(frames: torch.Tensor, saliency: torch.Tensor, max_zoom: float = 4.0) -> torch.Tensor:
    """Warp frames so that salient regions take more pixels: :func:`amplify_grid`, then :func:`sample_by_grid`.

    Args:
        frames: ``[N, C, H, W]`` float32 / float64 / float16 / bfloat16.
        saliency: ``[N, h, w]`` >= 0, one map per frame.
        max_zoom: upper bound (>= 1) on the local magnification along each axis.

    Returns:
        ``[N, C, H, W]`` in ``frames.dtype``; differentiable w.r.t. ``frames`` and ``saliency``.
    """
    _check_frames(frames)
    if saliency.dim() != 3 or saliency.shape[0] != frames.shape[0]:
        raise ValueError(
            f"saliency must be [N={frames.shape[0]}, h, w], got shape {tuple(saliency.shape)}"
        )
    return sample_by_grid(frames, amplify_grid(saliency, (frames.shape[2], frames.shape[3]), max_zoom))
