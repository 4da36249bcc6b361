"""The interface every frame sampler implements, learned or not."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from stsampler.config import SamplerConfig


def gather_frames(clips: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Pick frames: ``clips [B, M, ...]``, ``indices [B, T]`` -> ``[B, T, ...]``."""
    rows = torch.arange(clips.shape[0], device=clips.device)[:, None]
    return clips[rows, indices.to(clips.device)]


@dataclass
class SamplerOutput:
    """What a sampler hands to the recogniser, plus what it saw (for losses, metrics and pictures).

    Attributes:
        frames: the selected (and amplified) frames, float ``[B, T, 3, H, W]``.
        indices: the dense-frame index of each selected frame, int64 ``[B, T]``, ascending per row.
        indicator: the (soft in training, hard in evaluation) selection matrix ``[B, T, M]``, or None
            for samplers that select without one.
        scores: per-frame importance ``[B, M]`` in [0, 1], or None.
        saliency: saliency of the selected frames ``[B, T, h, w]``, or None without amplification.
        grid: the amplification sampling grid ``[B, T, H, W, 2]`` in [-1, 1], or None.
        video_feature: the scan feature g_X ``[B, D]`` (ProtoNet concatenates it), or None.
        frame_features: the scan features f_i of all M frames ``[B, M, D]`` (the scan classifier
            reads them), or None.
    """

    frames: torch.Tensor
    indices: torch.Tensor
    indicator: torch.Tensor | None = None
    scores: torch.Tensor | None = None
    saliency: torch.Tensor | None = None
    grid: torch.Tensor | None = None
    video_feature: torch.Tensor | None = None
    frame_features: torch.Tensor | None = None


class FrameSampler(nn.Module):
    """Picks T of the M dense frames of each video (and may warp them).

    Subclasses implement :meth:`forward` and :meth:`from_config` (the builder the ``SAMPLERS``
    registry calls). ``num_frames`` is T; ``feature_dim`` is the size of
    ``SamplerOutput.video_feature`` (0 when the sampler produces none).
    """

    num_frames: int
    feature_dim: int = 0

    @classmethod
    def from_config(cls, cfg: SamplerConfig, seed: int = 0) -> FrameSampler:
        """The sampler ``cfg`` describes; ``seed`` seeds any random source of its own."""
        raise NotImplementedError

    def forward(self, clips: torch.Tensor, is_support: torch.Tensor) -> SamplerOutput:
        """Select frames.

        Args:
            clips: normalised dense clips, float ``[B, M, 3, H, W]``.
            is_support: bool ``[B]``, True for the episode's support videos. Learned samplers adapt
                to the support rows only; a query's output never depends on other queries.
        """
        raise NotImplementedError
