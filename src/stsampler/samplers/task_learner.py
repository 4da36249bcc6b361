"""The task-adaptive learner: generates the sampler's task-specific weights from the support set.

The task context is the mean scan feature of the support videos only; queries never enter, so a
query's output cannot depend on other queries or on query labels.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn


class TaskParams(NamedTuple):
    """Weights generated for one episode (shared by all its support and query videos).

    Attributes:
        w2: unit-norm last layer of the temporal evaluator ``[ts_dim]``, or None without one.
        w_s: unit-norm saliency channel weights ``[sa_dim]``, or None without one.
        mu: mean of the task latent ``[latent]``.
        logvar: log variance of the task latent ``[latent]``.
    """

    w2: torch.Tensor | None
    w_s: torch.Tensor | None
    mu: torch.Tensor
    logvar: torch.Tensor

    def kl(self) -> torch.Tensor:
        """KL divergence of N(mu, exp(logvar)) from N(0, I), a scalar (an optional regulariser)."""
        return 0.5 * (self.mu.square() + self.logvar.exp() - 1.0 - self.logvar).sum()


class TaskAdaptiveLearner(nn.Module):
    """Support features -> task latent f_t -> (w2, w_s).

    Encoder: ``in_dim -> hidden -> ReLU -> 2 * latent`` giving mu and log variance. In training
    ``f_t = mu + exp(logvar / 2) * eps`` with ``eps ~ N(0, I)``; in evaluation ``f_t = mu`` unless
    ``sample_in_eval``. Generators: linear ``latent -> ts_dim`` and ``latent -> sa_dim``, outputs
    divided by their L2 norm.

    Args:
        in_dim: support feature size (the scan feature g_X, 1024).
        hidden: encoder hidden width.
        latent: task latent size.
        ts_dim: size of w2 (the evaluator's hidden width), or None to generate no w2.
        sa_dim: size of w_s (saliency channels C), or None to generate no w_s.
        sample_in_eval: also sample f_t in evaluation.
    """

    def __init__(
        self,
        in_dim: int = 1024,
        hidden: int = 256,
        latent: int = 128,
        ts_dim: int | None = 512,
        sa_dim: int | None = None,
        sample_in_eval: bool = False,
    ) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 2 * latent)
        )
        self.gen_ts = nn.Linear(latent, ts_dim) if ts_dim else None
        self.gen_sa = nn.Linear(latent, sa_dim) if sa_dim else None
        self.sample_in_eval = sample_in_eval

    def forward(self, support_features: torch.Tensor, generator: torch.Generator | None = None) -> TaskParams:
        """Generate the episode's weights.

        Args:
            support_features: scan features g_X of the support videos only, ``[S, in_dim]``.
            generator: source of eps when sampling (for reproducible runs); eps is drawn on the
                generator's device and moved to the features' device.

        Returns:
            :class:`TaskParams` with w2 ``[ts_dim]`` and w_s ``[sa_dim]`` (each None when disabled).
        """
        context = support_features.mean(dim=0)
        mu, logvar = self.encoder(context).chunk(2, dim=-1)
        latent = mu
        if self.training or self.sample_in_eval:
            draw_device = generator.device if generator is not None else mu.device
            eps = torch.randn(mu.shape, generator=generator, device=draw_device, dtype=mu.dtype).to(mu.device)
            latent = mu + (0.5 * logvar).exp() * eps
        w2 = F.normalize(self.gen_ts(latent), dim=-1) if self.gen_ts is not None else None
        w_s = F.normalize(self.gen_sa(latent), dim=-1) if self.gen_sa is not None else None
        return TaskParams(w2=w2, w_s=w_s, mu=mu, logvar=logvar)
