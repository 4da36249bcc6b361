"""STSampler: the task-adaptive spatial-temporal sampler (scanner + selector + amplifier + task learner).

One forward pass over an episode (``docs/method.md`` section 2):

1. the scanner sees all B * M dense frames at low resolution in one batch: f_i ``[B, M, D]``,
   g_X ``[B, D]`` and stage maps;
2. the task learner turns the support rows' g_X into w2 and w_s, shared by every row of the
   episode (support and queries), so a query never depends on other queries;
3. the selector scores the frames and builds the indicator Y ``[B, T, M]``;
4. the amplifier's saliency S ``[B, M, h, w]`` is selected the same way (Y S) and warps Y X.

The work is split in two so that inference can scan cheap low-resolution copies of all M frames and
decode only the T selected frames at full resolution: :meth:`STSampler.plan` (scan, adapt, select)
and :meth:`STSampler.apply` (amplify the selected frames). :meth:`STSampler.forward` is plan +
gather + apply. :meth:`STSampler.task_params` lets inference adapt to a support set once and reuse
the result for any number of query batches (``task=``).

Evaluation callers should wrap calls in ``torch.inference_mode()``; the module does not force it.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from stsampler.config import SamplerConfig
from stsampler.data.indices import jittered_indices, uniform_indices
from stsampler.errors import ConfigError, StsamplerError
from stsampler.samplers.amplifier import SpatialAmplifier, build_amplifier
from stsampler.samplers.base import FrameSampler, SamplerOutput, gather_frames
from stsampler.samplers.scanner import Scanner, build_scanner
from stsampler.samplers.selector import TemporalSelector, build_selector
from stsampler.samplers.task_learner import (
    TaskAdaptiveLearner,
    TaskParams,
    build_task_learner,
)


class SamplePlan(NamedTuple):
    """Which frames to take and how to warp them, for B videos.

    Attributes:
        indices: selected dense-frame indices ``[B, T]`` int64, ascending.
        indicator: selection matrix ``[B, T, M]`` (soft in training with the temporal selector).
        scores: frame scores ``[B, M]`` in [0, 1], or None without the temporal selector.
        saliency: the map each selected frame is warped by ``[B, T, h, w]`` (its own saliency, or
            with ``clip_warp`` the max over the video's T maps), or None without amplification.
        video_feature: scan feature g_X ``[B, D]``.
        frame_features: scan features f_i of the M frames ``[B, M, D]``.
        soft: the indicator mixes frames (training with the temporal selector), so selection is the
            product Y X; otherwise it is one-hot and selection is a gather at ``indices``.
    """

    indices: torch.Tensor
    indicator: torch.Tensor
    scores: torch.Tensor | None
    saliency: torch.Tensor | None
    video_feature: torch.Tensor
    frame_features: torch.Tensor
    soft: bool


def select_rows(x: torch.Tensor, indicator: torch.Tensor, indices: torch.Tensor, soft: bool) -> torch.Tensor:
    """Y x: ``x [B, M, ...]`` -> ``[B, T, ...]``.

    A soft indicator ``[B, T, M]`` mixes rows (differentiable w.r.t. the indicator); a one-hot one is
    applied as a gather at ``indices [B, T]``, which gives the same values without the product.
    """
    if soft:
        return torch.einsum("btm,bm...->bt...", indicator.to(x.dtype), x)
    return gather_frames(x, indices)


def clip_saliency(saliency: torch.Tensor) -> torch.Tensor:
    """One warp map per video: the pixelwise max of its T maps ``[B, T, h, w]``, repeated for every frame
    (a view of the same shape)."""
    return saliency.amax(dim=1, keepdim=True).expand_as(saliency)


class STSampler(FrameSampler):
    """The learned sampler, assembled from its parts; an absent part (None) is one ablation switch.

    Build it from a config with :meth:`from_config` (``SamplerConfig`` holds every default).

    Args:
        num_frames: T, frames handed to the recogniser.
        scanner: sees all M dense frames at low resolution (:class:`Scanner`).
        selector: learns which frames to take; None -> uniform segment centres (one-hot indicator).
        amplifier: warps the selected frames by their saliency; None -> frames unchanged.
        task_learner: generates w2 / w_s from the support set; None -> fixed learned w2 / w_s.
            Needs something to adapt: the selector or a saliency that takes weights. A learner
            that generates the weights outright (not ``residual``, the paper's form) leaves the
            shared weights unused, so they are frozen.
        soft_saliency: in training with the selector, select the saliency with the soft indicator,
            S' = Y S (the paper): the scores also learn from which frames' maps warp well, at the
            cost of the saliency of all M frames. False takes the saliency of the hard top-T frames.
        saliency_trains_scanner: let the saliency's gradient reach the scanner's stage maps (the
            paper trains end to end). False stops it there: the amplifier trains only its own
            weights, and the scanner learns from the selector and the recogniser's use of g_X.
        evaluator_learns: train the selector's evaluator (W1, w2) and the task learner's w2 generator
            (the paper). False keeps them at their initialisation, a fixed random scorer of the scan
            features (``docs/method.md`` section 9): the score gradient then trains the scanner only.
        clip_warp: warp the T selected frames of a video by one map, the pixelwise max of their
            saliency maps (the union of where the object is), so that its motion across the frames
            survives the warp; False (the paper) warps each frame by its own map, which magnifies the
            object where it is in that frame and so hides much of how it moved.

    Attributes:
        generator: optional ``torch.Generator`` for every random draw in training (the perturbation
            noise and the task latent's eps); set it for reproducible runs.
        sigma: the perturbation scale, settable (the trainer applies its schedule through it).
        explore: in training, bypass the selector and take one random frame per segment (the
            trainer sets it during ``sampler.selector_warmup``), so that a recogniser trained from
            scratch first sees the actions on frames the selector did not choose.
    """

    def __init__(
        self,
        num_frames: int,
        scanner: Scanner,
        selector: TemporalSelector | None,
        amplifier: SpatialAmplifier | None,
        task_learner: TaskAdaptiveLearner | None,
        *,
        soft_saliency: bool,
        saliency_trains_scanner: bool,
        evaluator_learns: bool = True,
        clip_warp: bool = False,
    ) -> None:
        super().__init__()
        adapts_saliency = amplifier is not None and amplifier.needs_weights
        if task_learner is not None and selector is None and not adapts_saliency:
            raise ConfigError("a task learner needs a temporal selector or a saliency that takes weights (paper)")
        self.num_frames = num_frames
        self.scanner = scanner
        self.feature_dim = scanner.out_dim
        self.selector = selector
        self.amplifier = amplifier
        self.task_learner = task_learner
        if task_learner is not None and not task_learner.residual:
            for shared in self._shared_weights():
                if shared is not None:
                    shared.requires_grad_(False)
        if not evaluator_learns:
            fixed = [selector, task_learner.gen_ts if task_learner is not None else None]
            for module in (m for m in fixed if m is not None):
                module.requires_grad_(False)
        self.generator: torch.Generator | None = None
        self.explore = False
        self.soft_saliency = soft_saliency
        self.saliency_trains_scanner = saliency_trains_scanner
        self.clip_warp = clip_warp
        self._sigma = selector.sigma if selector is not None else 0.0

    @classmethod
    def from_config(cls, cfg: SamplerConfig, seed: int = 0) -> STSampler:
        """Build every part from ``cfg`` (``seed`` is unused: training draws from :attr:`generator`)."""
        scanner = build_scanner(cfg)
        selector = build_selector(cfg, scanner.out_dim)
        amplifier = build_amplifier(cfg, sum(scanner.map_channels))
        ts_dim = selector.w2.numel() if selector is not None else None
        sa_dim = amplifier.w_s.numel() if amplifier is not None and amplifier.needs_weights else None
        return cls(
            cfg.num_frames, scanner, selector, amplifier, build_task_learner(cfg, scanner.out_dim, ts_dim, sa_dim),
            soft_saliency=cfg.experimental.soft_saliency, saliency_trains_scanner=cfg.saliency_trains_scanner,
            evaluator_learns=cfg.evaluator_learns, clip_warp=cfg.experimental.clip_warp,
        )

    @property
    def sigma(self) -> float:
        """Perturbation scale of the training-time top-k."""
        return self._sigma

    @sigma.setter
    def sigma(self, value: float) -> None:
        self._sigma = value
        if self.selector is not None:
            self.selector.sigma = value

    def scan(self, clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """Scan all frames of ``clips [B, M, 3, h, w]`` in one batch.

        Returns:
            Frame features ``[B, M, D]``, video features g_X ``[B, D]`` and the stage maps of the
            B * M frames (video-major).
        """
        b, m = clips.shape[:2]
        out = self.scanner(clips.flatten(0, 1))
        frame_features = out.features.view(b, m, -1)
        return frame_features, frame_features.mean(dim=1), out.maps

    def task_params(self, support_features: torch.Tensor) -> TaskParams | None:
        """Adapt to a support set: ``support_features [S, D]`` (g_X) -> :class:`TaskParams`.

        None when the sampler is not task-adaptive. Cache the result and pass it as ``task=``.
        """
        if self.task_learner is None:
            return None
        shared_ts, shared_sa = (None if w is None else F.normalize(w, dim=0) for w in self._shared_weights())
        return self.task_learner(support_features, self.generator, shared_ts, shared_sa)

    def _shared_weights(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The selector's own w2 and the amplifier's own w_s (None where the part or weight is absent)."""
        w2 = self.selector.w2 if self.selector is not None else None
        w_s = self.amplifier.w_s if self.amplifier is not None else None
        return w2, w_s

    def plan(
        self, scan_clips: torch.Tensor, is_support: torch.Tensor, task: TaskParams | None = None
    ) -> SamplePlan:
        """Scan, adapt and select.

        Args:
            scan_clips: normalised dense clips at any resolution ``[B, M, 3, h, w]`` (the scanner
                resizes them to its scan size, so a low-resolution copy suffices).
            is_support: bool ``[B]``; the support rows generate the task parameters unless ``task``
                is given.
            task: precomputed task parameters (from :meth:`task_params`), e.g. for query batches
                scored against a cached support set.

        Raises:
            StsamplerError: task-adaptive, no ``task`` and no support row.
        """
        frame_features, video_feature, maps = self.scan(scan_clips)
        if task is None and self.task_learner is not None:
            support = video_feature[is_support.to(video_feature.device)]
            if support.shape[0] == 0:
                raise StsamplerError(
                    "the batch has no support video to adapt to: pass task=sampler.task_params(support_g)"
                )
            task = self.task_params(support)
        b, m = frame_features.shape[:2]
        selecting = self.selector is not None and not (self.training and self.explore)
        if selecting:
            w2 = task.w2 if task is not None else None
            selection = self.selector(frame_features, video_feature, w2=w2, generator=self.generator)
            indicator, indices, scores = selection.indicator, selection.indices, selection.scores
        else:
            if self.selector is not None:
                indices = jittered_indices(m, self.num_frames, b, self.generator, frame_features.device)
            else:
                indices = uniform_indices(m, self.num_frames, b, frame_features.device)
            indicator = F.one_hot(indices, m).to(frame_features.dtype)
            scores = None
        soft = selecting and self.selector.training
        saliency = None
        if self.amplifier is not None:
            w_s = task.w_s if task is not None else None
            if not self.saliency_trains_scanner:
                maps = [m.detach() for m in maps]
            saliency = self._selected_saliency(maps, w_s, indicator, indices, soft and self.soft_saliency)
            if self.clip_warp:
                saliency = clip_saliency(saliency)
        return SamplePlan(indices, indicator, scores, saliency, video_feature, frame_features, soft)

    def _selected_saliency(
        self,
        maps: list[torch.Tensor],
        w_s: torch.Tensor | None,
        indicator: torch.Tensor,
        indices: torch.Tensor,
        soft: bool,
    ) -> torch.Tensor:
        """The saliency of the selected frames ``[B, T, h, w]`` from the stage maps of the B * M dense frames.

        ``soft``: S' = Y S with the saliency of all M frames (gradients reach the indicator).
        Otherwise only the maps of the frames at ``indices`` are turned into saliency: for a one-hot
        indicator the same result as Y S at T / M of the attention cost.
        """
        b, t, m = indicator.shape
        if soft:
            dense = self.amplifier.saliency(maps, w_s)
            return select_rows(dense.view(b, m, *dense.shape[1:]), indicator, indices, soft)
        chosen = [
            select_rows(x.view(b, m, *x.shape[1:]), indicator, indices, soft).flatten(0, 1) for x in maps
        ]
        return self.amplifier.saliency(chosen, w_s).view(b, t, *chosen[0].shape[-2:])

    def select(self, clips: torch.Tensor, plan: SamplePlan) -> torch.Tensor:
        """The selected frames Y X ``[B, T, 3, H, W]`` of ``clips [B, M, 3, H, W]``.

        A soft indicator mixes frames (so gradients reach the scores); a one-hot one gathers them.
        """
        return select_rows(clips, plan.indicator, plan.indices, plan.soft)

    def warp(self, plan: SamplePlan, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Amplify selected frames ``[B, T, 3, H, W]`` by the plan's saliency.

        Returns:
            The amplified frames ``[B, T, 3, H, W]`` and the grid ``[B, T, H, W, 2]`` (None and the
            frames unchanged without the spatial amplifier).
        """
        if self.amplifier is None or plan.saliency is None:
            return frames, None
        b, t, c, h, w = frames.shape
        warped, grid = self.amplifier(frames.flatten(0, 1), plan.saliency.flatten(0, 1))
        return warped.view(b, t, c, h, w), grid.view(b, t, h, w, 2)

    def apply(self, plan: SamplePlan, frames: torch.Tensor) -> torch.Tensor:
        """Amplify the T selected frames, decoded at full resolution: ``[B, T, 3, H, W]`` -> same."""
        return self.warp(plan, frames)[0]

    def forward(
        self, clips: torch.Tensor, is_support: torch.Tensor, task: TaskParams | None = None
    ) -> SamplerOutput:
        """Sample an episode (or a batch of queries with ``task=``).

        Args:
            clips: normalised dense clips ``[B, M, 3, H, W]``.
            is_support: bool ``[B]``.
            task: precomputed task parameters; None adapts to the batch's support rows.
        """
        plan = self.plan(clips, is_support, task)
        frames, grid = self.warp(plan, self.select(clips, plan))
        return SamplerOutput(
            frames=frames,
            indices=plan.indices,
            indicator=plan.indicator,
            scores=plan.scores,
            saliency=plan.saliency,
            grid=grid,
            video_feature=plan.video_feature,
            frame_features=plan.frame_features,
        )
