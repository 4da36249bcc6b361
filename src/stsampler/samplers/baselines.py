"""Training-free frame samplers: uniform (TSN segment centres), random and motion-guided.

Each picks T of the M dense frames of every video (ascending indices) and gathers them; none warps
frames or produces a video feature (``feature_dim = 0``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from stsampler.config import SamplerConfig
from stsampler.data.indices import spread_indices, uniform_indices
from stsampler.samplers.base import FrameSampler, SamplerOutput, gather_frames


class UniformSampler(FrameSampler):
    """The centre of each of T equal segments of the M dense frames."""

    def __init__(self, num_frames: int) -> None:
        super().__init__()
        self.num_frames = num_frames

    @classmethod
    def from_config(cls, cfg: SamplerConfig, seed: int = 0) -> UniformSampler:
        """T = ``cfg.num_frames`` segment centres (``seed`` is unused)."""
        return cls(cfg.num_frames)

    def forward(self, clips: torch.Tensor, is_support: torch.Tensor) -> SamplerOutput:
        """``clips [B, M, 3, H, W]`` -> T frames per video; ``is_support`` is unused."""
        indices = uniform_indices(clips.shape[1], self.num_frames, clips.shape[0], clips.device)
        return SamplerOutput(frames=gather_frames(clips, indices), indices=indices)


class RandomSampler(FrameSampler):
    """T distinct random frames per video (sorted), from a seeded generator.

    With fewer than T dense frames, frames are drawn with replacement.

    Args:
        num_frames: T.
        seed: seed of the sampler's own CPU generator (ignored when ``generator`` is given).
        generator: a generator to draw from instead.
    """

    def __init__(self, num_frames: int, seed: int = 0, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.num_frames = num_frames
        self.generator = generator if generator is not None else torch.Generator().manual_seed(seed)

    @classmethod
    def from_config(cls, cfg: SamplerConfig, seed: int = 0) -> RandomSampler:
        """T = ``cfg.num_frames`` random frames from a generator seeded with ``seed``."""
        return cls(cfg.num_frames, seed=seed)

    def forward(self, clips: torch.Tensor, is_support: torch.Tensor) -> SamplerOutput:
        """``clips [B, M, 3, H, W]`` -> T frames per video; ``is_support`` is unused."""
        batch, dense = clips.shape[:2]
        device = self.generator.device
        if dense >= self.num_frames:
            draws = torch.rand(batch, dense, generator=self.generator, device=device)
            indices = draws.argsort(dim=1)[:, : self.num_frames]
        else:
            indices = torch.randint(dense, (batch, self.num_frames), generator=self.generator, device=device)
        indices = indices.sort(dim=1).values.to(clips.device)
        return SamplerOutput(frames=gather_frames(clips, indices), indices=indices)


class MotionSampler(FrameSampler):
    """Motion-guided sampling (MGSampler-like), training-free.

    Motion of frame i: ``m_i = mean |x_i - x_{i-1}|`` on a copy downscaled to ``motion_size``
    (``m_0 = 0``). Frames are taken where the cumulative motion distribution crosses
    ``(j + 0.5) / T``, so segments with more motion get more frames; a small constant added to every
    m_i makes a static clip fall back to uniform picks. Indices are made distinct when ``M >= T``.

    Args:
        num_frames: T.
        motion_size: side of the downscaled copy the motion is measured on.
    """

    def __init__(self, num_frames: int, motion_size: int = 32) -> None:
        super().__init__()
        self.num_frames = num_frames
        self.motion_size = motion_size

    @classmethod
    def from_config(cls, cfg: SamplerConfig, seed: int = 0) -> MotionSampler:
        """T = ``cfg.num_frames`` motion-guided frames (``seed`` is unused)."""
        return cls(cfg.num_frames)

    def motion(self, clips: torch.Tensor) -> torch.Tensor:
        """Per-frame motion ``[B, M]`` of ``clips [B, M, C, H, W]`` (0 for the first frame)."""
        batch, dense = clips.shape[:2]
        small = F.adaptive_avg_pool2d(clips.flatten(0, 1), self.motion_size).view(batch, dense, -1)
        diffs = (small[:, 1:] - small[:, :-1]).abs().mean(dim=-1)
        return F.pad(diffs, (1, 0))

    @torch.no_grad()
    def forward(self, clips: torch.Tensor, is_support: torch.Tensor) -> SamplerOutput:
        """``clips [B, M, 3, H, W]`` -> T frames per video; ``is_support`` is unused."""
        dense = clips.shape[1]
        motion = self.motion(clips).float() + 1e-6
        cdf = motion.cumsum(dim=1)
        cdf = cdf / cdf[:, -1:]
        steps = torch.arange(self.num_frames, device=clips.device, dtype=cdf.dtype)
        targets = (steps + 0.5) / self.num_frames
        targets = targets.expand(clips.shape[0], self.num_frames).contiguous()
        indices = torch.searchsorted(cdf, targets).clamp_max(dense - 1)
        indices = spread_indices(indices, dense)
        return SamplerOutput(frames=gather_frames(clips, indices), indices=indices)
