"""Saliency maps from the scanner's feature maps, and the spatial amplifier that warps by them.

Two saliency variants (``docs/method.md`` section 5): ``"paper"`` (channel self-attention weighted by
w_s, learned or generated per task) and ``"code"`` (parameter-free mean of channel means, what the
public code does). Both give one map per frame in [0, 1]; the amplifier then warps each selected frame
by its (selected) map: one grid per frame (:func:`stsampler.ops.amplify.amplify_grid`), used both to
resample the frame and as the returned grid.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from stsampler.config import SamplerConfig
from stsampler.errors import ConfigError
from stsampler.ops.amplify import amplify_grid, sample_by_grid
from stsampler.ops.encoding import minmax_normalise

SALIENCY_VARIANTS = ("paper", "code")


def _upsample(maps: Sequence[torch.Tensor], size: tuple[int, int]) -> list[torch.Tensor]:
    """Bilinearly resize every map ``[N, C_k, h_k, w_k]`` to ``size`` (maps already there pass)."""
    return [
        m if tuple(m.shape[-2:]) == size else F.interpolate(m, size, mode="bilinear", align_corners=False)
        for m in maps
    ]


def saliency_code(maps: Sequence[torch.Tensor]) -> torch.Tensor:
    """Parameter-free saliency: mean of the channel-mean maps of the stages.

    Args:
        maps: stage feature maps ``[N, C_k, h_k, w_k]``; the first one sets the output size (h, w).

    Returns:
        ``[N, h, w]`` in [0, 1], min-max normalised per frame.
    """
    size = tuple(maps[0].shape[-2:])
    means = _upsample([m.mean(dim=1, keepdim=True) for m in maps], size)
    return minmax_normalise(torch.cat(means, dim=1).mean(dim=1), dims=(1, 2))


def saliency_paper(maps: Sequence[torch.Tensor], w_s: torch.Tensor) -> torch.Tensor:
    """Saliency by channel self-attention, weighted by ``w_s``.

    F: the maps upsampled to the first map's size and concatenated to C channels, ``[N, C, hw]``;
    alpha = softmax(F F^T / sqrt(hw)) ``[N, C, C]``; F' = alpha F; S = (1/C) sum_c w_s[c] F'_c,
    computed as ((w_s / C) alpha) F so F' is never formed.

    Args:
        maps: stage feature maps ``[N, C_k, h_k, w_k]`` with sum_k C_k = C.
        w_s: channel weights, ``[C]`` (shared), or ``[G, C]`` with N divisible by G: frames are
            grouped consecutively, so ``[B, C]`` weights the N = B * M frames of B videos per video.

    Returns:
        ``[N, h, w]`` in [0, 1], min-max normalised per frame.
    """
    size = tuple(maps[0].shape[-2:])
    feats = torch.cat(_upsample(maps, size), dim=1).flatten(2)
    n, c, hw = feats.shape
    attention = torch.softmax(feats @ feats.transpose(1, 2) / math.sqrt(hw), dim=-1)
    weights = w_s.reshape(-1, c)
    groups = weights.shape[0]
    weights = weights[:, None, None, :].expand(groups, n // groups, 1, c).reshape(n, 1, c) / c
    saliency = (weights @ attention @ feats).view(n, *size)
    return minmax_normalise(saliency, dims=(1, 2))


class SpatialAmplifier(nn.Module):
    """Computes per-frame saliency and warps frames by it.

    Args:
        channels: total channels C of the scanner maps (needed by the ``"paper"`` variant).
        variant: ``"paper"`` or ``"code"``.
        max_zoom: magnification cap of the warp.

    Without generated weights the ``"paper"`` variant uses its own learned vector ``w_s`` (used
    unit-normalised, like generated ones).
    """

    def __init__(self, channels: int, variant: str, max_zoom: float) -> None:
        super().__init__()
        if variant not in SALIENCY_VARIANTS:
            raise ConfigError(f"saliency variant {variant!r} is not one of {SALIENCY_VARIANTS}")
        self.variant = variant
        self.max_zoom = max_zoom
        self.w_s = nn.Parameter(torch.full((channels,), channels**-0.5)) if variant == "paper" else None

    @property
    def needs_weights(self) -> bool:
        """Whether the saliency uses channel weights w_s (which a task learner may generate)."""
        return self.variant == "paper"

    def saliency(self, maps: Sequence[torch.Tensor], w_s: torch.Tensor | None = None) -> torch.Tensor:
        """Saliency of N frames ``[N, h, w]`` in [0, 1].

        Args:
            maps: scanner stage maps of the N frames.
            w_s: generated weights ``[C]`` or ``[G, C]`` (see :func:`saliency_paper`); None uses the
                module's own w_s. Ignored by the ``"code"`` variant.
        """
        if self.variant == "code":
            return saliency_code(maps)
        return saliency_paper(maps, w_s if w_s is not None else F.normalize(self.w_s, dim=0))

    def forward(self, frames: torch.Tensor, saliency: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Warp frames ``[N, C, H, W]`` by saliency ``[N, h, w]``.

        Returns:
            The warped frames ``[N, C, H, W]`` (differentiable w.r.t. both inputs) and the sampling
            grid ``[N, H, W, 2]`` in [-1, 1] (detached, for inspection).
        """
        grid = amplify_grid(saliency, tuple(frames.shape[-2:]), self.max_zoom)
        return sample_by_grid(frames, grid), grid.detach()


def build_amplifier(cfg: SamplerConfig, channels: int) -> SpatialAmplifier | None:
    """The spatial amplifier of ``cfg`` over ``channels`` scanner map channels (None unless ``cfg.spatial``)."""
    return SpatialAmplifier(channels, cfg.saliency, cfg.max_zoom) if cfg.spatial else None
