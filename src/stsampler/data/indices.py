"""Which frames to take: TSN-style segment sampling, for decoding and for the samplers.

:func:`segment_indices` serves the dense scan (``count = M`` frames over the whole video, the
learned sampler's input) and the uniform baseline (``count = T``); the batched helpers pick T of
the M dense frames of B clips. Both ``data`` and ``samplers`` import from here, never the reverse.
"""
from __future__ import annotations

import torch

__all__ = ["jittered_indices", "segment_indices", "spread_indices", "uniform_indices"]


def segment_indices(
    num_frames: int,
    count: int,
    random: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``count`` frame indices, one per equal segment of ``[0, num_frames)``, ascending.

    The video is split into ``count`` segments with integer boundaries
    ``b_i = floor(i * num_frames / count)``; segment ``i`` is ``[b_i, b_{i+1})``. Test mode
    (``random=False``) takes each segment's centre, ``floor((i + 0.5) * num_frames / count)``;
    training mode (``random=True``) takes one uniformly random frame of each segment (TSN), drawn
    from ``generator`` (the global torch RNG if None), so the result is a deterministic function of
    the generator's state. With ``num_frames >= count`` the indices are distinct in both modes and
    every frame can be drawn in training.

    A video shorter than ``count`` frames has empty segments: indices repeat (each frame about
    ``count / num_frames`` times, still ascending); nothing fails.

    Args:
        num_frames: frames in the video (>= 1).
        count: indices wanted (>= 1).
        random: draw a random point per segment instead of the centre.
        generator: the random source for ``random=True``.

    Returns:
        int64 tensor ``[count]``, ascending, every value in ``[0, num_frames)``.

    Raises:
        ValueError: ``num_frames < 1`` or ``count < 1``.
    """
    num_frames = int(num_frames)
    count = int(count)
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1 (a video with no frames cannot be sampled), got {num_frames}")
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    if not random:
        centres = (torch.arange(count, dtype=torch.float64) + 0.5) * (num_frames / count)
        return centres.floor().to(torch.int64).clamp_(0, num_frames - 1)
    bounds = torch.arange(count + 1, dtype=torch.int64) * num_frames // count  # exact integer boundaries
    lengths = bounds[1:] - bounds[:-1]
    offsets = (torch.rand(count, generator=generator, dtype=torch.float64) * lengths).floor().to(torch.int64)
    return (bounds[:-1] + offsets).clamp_(0, num_frames - 1)


def uniform_indices(
    num_frames: int, count: int, batch: int, device: torch.device | None = None
) -> torch.Tensor:
    """TSN segment centres of ``num_frames`` dense frames, ``count`` per video: int64 ``[batch, count]``."""
    return segment_indices(num_frames, count).to(device).expand(batch, count)


def jittered_indices(
    num_dense: int, num_frames: int, batch: int, generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """One random frame in each of ``num_frames`` equal segments of ``num_dense``: ``[batch, num_frames]`` int64.

    Ascending; drawn from ``generator`` on its device, returned on ``device``.
    """
    draw_device = generator.device if generator is not None else device
    offsets = torch.rand(batch, num_frames, generator=generator, device=draw_device)
    positions = (torch.arange(num_frames, device=draw_device) + offsets) * (num_dense / num_frames)
    return positions.long().clamp_(max=num_dense - 1).to(device)


def spread_indices(indices: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Make sorted indices ``[B, T]`` strictly increasing when ``num_frames >= T``.

    Each index is pushed up to at least one past its predecessor, then down to leave room for the
    indices after it (``<= M - T + j``); both bounds are increasing in j, so the result is strictly
    increasing and stays within [0, M - 1]. With fewer frames than T, indices are only clamped.
    """
    count = indices.shape[-1]
    if num_frames < count:
        return indices.clamp_max(num_frames - 1)
    offsets = torch.arange(count, device=indices.device)
    pushed = torch.cummax(indices - offsets, dim=-1).values + offsets
    return torch.minimum(pushed, offsets + (num_frames - count))
