"""Square resizing of float frames, shared by the scanner (to its scan size) and the recogniser (to its input size)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def resize_square(frames: torch.Tensor, side: int) -> torch.Tensor:
    """Frames ``[N, C, H, W]`` resized to ``[N, C, side, side]``: bilinear, antialiased when shrinking,
    differentiable; returned unchanged (the same tensor) when already that size."""
    size = (side, side)
    if tuple(frames.shape[-2:]) == size:
        return frames
    shrinking = frames.shape[-2] > side or frames.shape[-1] > side
    return F.interpolate(frames, size=size, mode="bilinear", align_corners=False, antialias=shrinking)
