"""The temporal selector: scores every dense frame and picks the top T in temporal order.

Evaluator (``docs/method.md`` section 2.3): ``s_i = w2 . ReLU(W1 (cat(f_i, g_X) + PE(i)))`` with a
sinusoidal position encoding PE of the frame index, scores min-max normalised per video to [0, 1].
Training selects with the differentiable perturbed top-k, evaluation with the hard top-k.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from stsampler.config import SamplerConfig
from stsampler.ops.encoding import minmax_normalise, sinusoidal_encoding
from stsampler.ops.topk import hard_topk, perturbed_topk


class Selection(NamedTuple):
    """The selector's result for B videos of M frames.

    Attributes:
        scores: per-frame scores ``[B, M]`` in [0, 1].
        indicator: ``[B, T, M]``: soft (perturbed top-k) in training, one-hot in evaluation; rows in
            temporal order.
        indices: ``[B, T]`` int64 ascending: the hard top-k of the unperturbed scores.
    """

    scores: torch.Tensor
    indicator: torch.Tensor
    indices: torch.Tensor


class TemporalSelector(nn.Module):
    """Frame evaluator plus top-k selection.

    Args:
        feature_dim: frame feature size D (the evaluator input is 2 D: frame and video feature).
        num_frames: T, frames to select.
        hidden: evaluator hidden width (the size of w2).
        num_samples: noise samples of the perturbed top-k.
        sigma: perturbation scale; a plain attribute the trainer updates from its schedule.
        noise: ``"normal"`` or ``"gumbel"``.
        control_variate: use the control variate in the perturbed top-k gradient.
        pe_scale: factor on the sinusoidal position encoding added to ``cat(f_i, g_X)``. The paper
            adds it unscaled (1.0); 0.1 keeps the encoding from swamping the scanner features, so
            the evaluator does not score frames by position alone (``docs/method.md`` section 9).

    The evaluator's last weight w2 is its own parameter unless the caller passes generated weights
    (the task-adaptive learner); either way it is used with unit norm.
    """

    def __init__(
        self,
        feature_dim: int,
        num_frames: int,
        *,
        num_samples: int,
        sigma: float,
        noise: str,
        control_variate: bool,
        pe_scale: float,
        hidden: int = 512,
    ) -> None:
        super().__init__()
        self.num_frames = num_frames
        self.pe_scale = pe_scale
        self.w1 = nn.Linear(2 * feature_dim, hidden)
        self.w2 = nn.Parameter(torch.full((hidden,), hidden**-0.5))
        self.num_samples = num_samples
        self.sigma = sigma
        self.noise = noise
        self.control_variate = control_variate

    def score(
        self, frame_features: torch.Tensor, video_feature: torch.Tensor, w2: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Scores ``[B, M]`` in [0, 1].

        Args:
            frame_features: f_i ``[B, M, D]``.
            video_feature: g_X ``[B, D]``.
            w2: generated last-layer weights ``[hidden]`` or ``[B, hidden]`` (unit norm); None uses
                the module's own w2.
        """
        b, m, d = frame_features.shape
        pairs = torch.cat([frame_features, video_feature[:, None, :].expand(b, m, d)], dim=-1)
        pairs = pairs + self.pe_scale * sinusoidal_encoding(m, 2 * d, pairs.device).to(pairs.dtype)
        hidden = F.relu(self.w1(pairs))
        weights = w2 if w2 is not None else F.normalize(self.w2, dim=0)
        raw = (hidden * weights.reshape(-1, 1, hidden.shape[-1])).sum(dim=-1)
        return minmax_normalise(raw, dims=(1,))

    def forward(
        self,
        frame_features: torch.Tensor,
        video_feature: torch.Tensor,
        w2: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Selection:
        """Score and select T frames per video.

        Args:
            frame_features: f_i ``[B, M, D]``.
            video_feature: g_X ``[B, D]``.
            w2: generated weights ``[hidden]`` or ``[B, hidden]``, or None (own parameter).
            generator: source of the perturbation noise in training (reproducible runs).
        """
        scores = self.score(frame_features, video_feature, w2)
        hard = hard_topk(scores, self.num_frames)
        indices = hard.argmax(dim=-1)
        if not self.training:
            return Selection(scores=scores, indicator=hard, indices=indices)
        indicator = perturbed_topk(
            scores,
            self.num_frames,
            num_samples=self.num_samples,
            sigma=self.sigma,
            noise=self.noise,
            control_variate=self.control_variate,
            generator=generator,
        )
        return Selection(scores=scores, indicator=indicator, indices=indices)


def build_selector(cfg: SamplerConfig, feature_dim: int) -> TemporalSelector | None:
    """The temporal selector of ``cfg`` over frame features of size ``feature_dim`` (None unless ``cfg.temporal``)."""
    if not cfg.temporal:
        return None
    x = cfg.experimental
    return TemporalSelector(
        feature_dim, cfg.num_frames, num_samples=cfg.num_samples, sigma=cfg.sigma0, noise=x.noise,
        control_variate=x.control_variate, pe_scale=x.pe_scale,
    )
