"""Which frames of a video to decode: TSN-style segment sampling.

The same function serves the dense scan (``count = M`` frames over the whole video, the learned
sampler's input) and the uniform baseline (``count = T``).
"""
from __future__ import annotations

import torch

__all__ = ["segment_indices"]


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
