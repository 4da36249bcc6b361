"""The temporal selector: scores every dense frame and picks the top T in temporal order.

Two scorers (``docs/method.md`` section 2.3), both min-max normalised per video to [0, 1]:

- ``evaluator`` (the paper's): ``s_i = w2 . ReLU(W1 (cat(f_i, g_X) + PE(i)))`` with a sinusoidal
  position encoding PE of the frame index;
- ``distance``: ``s_i = || w2 * (f_i - g_X) ||``, how far a frame's scan feature lies from the video's
  mean feature, channel c weighted by w2_c (section 9): a frame that stands out scores high whatever
  the initialisation, and the score's gradient reaches the scanner.

Training selects with the differentiable perturbed top-k, evaluation with the hard top-k.
"""
from __future__ import annotations

from typing import Literal, NamedTuple

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
    """Frame scorer plus top-k selection.

    Args:
        feature_dim: frame feature size D (the evaluator input is 2 D: frame and video feature).
        num_frames: T, frames to select.
        scorer: ``"evaluator"`` (the paper's MLP, w2 of size ``hidden``) or ``"distance"`` (w2 of
            size D weights the channels of ``f_i - g_X``; no position encoding, no W1).
        hidden: evaluator hidden width (the size of w2 for the evaluator).
        num_samples: noise samples of the perturbed top-k.
        sigma: perturbation scale; a plain attribute the trainer updates from its schedule.
        noise: ``"normal"`` or ``"gumbel"``.
        control_variate: use the control variate in the perturbed top-k gradient.
        pe_scale: factor on the sinusoidal position encoding added to ``cat(f_i, g_X)``. The paper
            adds it unscaled (1.0); 0.1 keeps the encoding from swamping the scanner features, so
            the evaluator does not score frames by position alone (``docs/method.md`` section 9).

    The scorer's weight w2 is its own parameter unless the caller passes generated weights (the
    task-adaptive learner); either way it is used with unit norm. It starts uniform, so the distance
    scorer starts as the plain Euclidean distance.
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
        scorer: Literal["evaluator", "distance"] = "evaluator",
        hidden: int = 512,
    ) -> None:
        super().__init__()
        self.num_frames = num_frames
        self.pe_scale = pe_scale
        self.scorer = scorer
        self.w1 = nn.Linear(2 * feature_dim, hidden) if scorer == "evaluator" else None
        width = hidden if scorer == "evaluator" else feature_dim
        self.w2 = nn.Parameter(torch.full((width,), width**-0.5))
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
            w2: generated weights ``[W]`` or ``[B, W]`` (unit norm; W is the size of the module's
                own w2); None uses the module's own w2.
        """
        weights = w2 if w2 is not None else F.normalize(self.w2, dim=0)
        weights = weights.reshape(-1, 1, weights.shape[-1])
        if self.w1 is None:
            raw = ((frame_features - video_feature[:, None, :]) * weights).norm(dim=-1)
            return minmax_normalise(raw, dims=(1,))
        b, m, d = frame_features.shape
        pairs = torch.cat([frame_features, video_feature[:, None, :].expand(b, m, d)], dim=-1)
        pairs = pairs + self.pe_scale * sinusoidal_encoding(m, 2 * d, pairs.device).to(pairs.dtype)
        raw = (F.relu(self.w1(pairs)) * weights).sum(dim=-1)
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
            w2: generated weights ``[W]`` or ``[B, W]``, or None (own parameter).
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
        control_variate=x.control_variate, pe_scale=x.pe_scale, scorer=cfg.scorer,
    )
