"""Clip-level augmentation on uint8 frames and ImageNet normalisation.

:class:`ClipTransform` runs in the DataLoader workers on one clip ``uint8 [T, 3, H, W]`` at a time,
vectorised over the frames (one resize / crop / flip call for the whole clip): every frame of a
clip gets the same crop and the same flip, so motion stays consistent. :func:`normalize` runs
once per batch on the device, turning ``uint8`` into float.
"""
from __future__ import annotations

import torch
from torchvision.transforms.v2 import functional as F

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "ClipTransform", "normalize", "denormalize"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ClipTransform:
    """Resize the short side, crop a square, maybe flip; the same for every frame of the clip.

    Args:
        crop_size: side of the square output.
        resize_short: the short side is first resized to this (aspect kept, antialiased); ``None``
            skips resizing. Skipped as well when the short side already has this size.
        train: random crop (one position for the whole clip) and, with ``flip``, a horizontal
            flip with probability 0.5 (one decision for the whole clip); otherwise a centre crop.
        flip: allow the flip in training. Set False for datasets whose labels depend on
            left/right (Something-Something: "pushing something from left to right").

    A clip smaller than ``crop_size`` after resizing is first scaled up so its short side equals
    ``crop_size``.

    Call with ``frames`` uint8 ``[T, 3, H, W]`` and an optional ``torch.Generator``; every random
    decision comes from it (the global torch RNG if None). Returns uint8 ``[T, 3, crop, crop]``.
    """

    def __init__(self, crop_size: int = 224, resize_short: int | None = 256, train: bool = False, flip: bool = True):
        if crop_size < 1:
            raise ValueError(f"crop_size must be >= 1, got {crop_size}")
        if resize_short is not None and resize_short < 1:
            raise ValueError(f"resize_short must be >= 1 or None, got {resize_short}")
        self.crop_size = int(crop_size)
        self.resize_short = None if resize_short is None else int(resize_short)
        self.train = bool(train)
        self.flip = bool(flip)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(crop_size={self.crop_size}, resize_short={self.resize_short}, "
            f"train={self.train}, flip={self.flip})"
        )

    def crop_geometry(self, height: int, width: int) -> tuple[float, float, int, int]:
        """Where the evaluation transform puts a ``height x width`` frame's pixels.

        Returns ``(scale_y, scale_x, top, left)``: input point (y, x) lands at
        ``(y * scale_y - top, x * scale_x - left)`` in the ``crop_size`` square output.

        Raises:
            ValueError: for a training transform, whose crop is random.
        """
        if self.train:
            raise ValueError("crop_geometry describes the evaluation transform; this one crops at random")
        new_h, new_w = _resized_size(height, width, self.resize_short)
        new_h, new_w = _resized_size(new_h, new_w, self.crop_size, only_up=True)
        top = int(round((new_h - self.crop_size) / 2.0))
        left = int(round((new_w - self.crop_size) / 2.0))
        return new_h / height, new_w / width, top, left

    def __call__(self, frames: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if frames.ndim != 4 or frames.shape[1] != 3:
            raise ValueError(f"ClipTransform expects frames [T, 3, H, W], got {tuple(frames.shape)}")
        frames = _resize_short(frames, self.resize_short)
        frames = _resize_short(frames, self.crop_size, only_up=True)
        height, width = frames.shape[-2:]
        size = self.crop_size
        if not self.train:
            return F.center_crop(frames, [size, size])
        top = int(torch.randint(0, height - size + 1, (1,), generator=generator))
        left = int(torch.randint(0, width - size + 1, (1,), generator=generator))
        frames = F.crop(frames, top, left, size, size)
        if self.flip and bool(torch.rand(1, generator=generator) < 0.5):
            frames = F.horizontal_flip(frames)
        return frames


def _resized_size(height: int, width: int, short: int | None, only_up: bool = False) -> tuple[int, int]:
    """``(height, width)`` after resizing the short side to ``short`` (kept when None, already there,
    or larger than ``short`` with ``only_up``)."""
    current = min(height, width)
    if short is None or current == short or (only_up and current > short):
        return height, width
    if height <= width:
        return short, max(1, int(round(width * short / height)))
    return max(1, int(round(height * short / width))), short


def _resize_short(frames: torch.Tensor, short: int | None, only_up: bool = False) -> torch.Tensor:
    height, width = frames.shape[-2:]
    size = _resized_size(height, width, short, only_up)
    return frames if size == (height, width) else F.resize(frames, list(size), antialias=True)


def normalize(frames: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 ``[..., 3, H, W]`` -> ImageNet-normalised float ``(x / 255 - mean) / std``.

    Runs on ``frames``' device in one pass over the whole batch (call it after moving the uint8
    batch to the GPU). The arithmetic is float32 (float64 if asked), then cast to ``dtype``.
    """
    if frames.dtype != torch.uint8:
        raise TypeError(f"normalize expects uint8 frames (0..255), got {frames.dtype}; it would normalise twice")
    if frames.ndim < 3 or frames.shape[-3] != 3:
        raise ValueError(f"normalize expects frames [..., 3, H, W], got {tuple(frames.shape)}")
    compute = torch.float64 if dtype == torch.float64 else torch.float32
    mean = torch.tensor(IMAGENET_MEAN, dtype=compute, device=frames.device).view(3, 1, 1) * 255.0
    inv_std = 1.0 / (torch.tensor(IMAGENET_STD, dtype=compute, device=frames.device).view(3, 1, 1) * 255.0)
    out = frames.to(compute).sub_(mean).mul_(inv_std)
    return out if out.dtype == dtype else out.to(dtype)


def denormalize(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`normalize` for pictures: float ``[..., 3, H, W]`` in [0, 1] (clamped)."""
    if x.ndim < 3 or x.shape[-3] != 3:
        raise ValueError(f"denormalize expects [..., 3, H, W], got {tuple(x.shape)}")
    dtype = x.dtype if x.is_floating_point() else torch.float32
    mean = torch.tensor(IMAGENET_MEAN, dtype=dtype, device=x.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=dtype, device=x.device).view(3, 1, 1)
    return (x.to(dtype) * std + mean).clamp_(0.0, 1.0)
