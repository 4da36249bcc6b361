"""The task-adaptive learner: generates the sampler's task-specific weights from the support set.

The task context is the mean scan feature of the support videos only; queries never enter, so a
query's output cannot depend on other queries or on query labels.

Residual generation (our default; ``docs/method.md`` section 5 gives both forms): the generators
output a bounded gate on the shared weights the sampler learns anyway,
``w2 = normalise(w2_shared * (1 + tanh(G_t(f_t))))``, and start at zero (gate 1). A task-adaptive
sampler therefore starts as the fixed one, and a task may scale each shared weight between 0 and
twice its value but never flip its sign. The paper's form, ``w2 = normalise(G_t(f_t))``, gives every
episode a random direction while the scan features are still untrained (section 9 says what we
measured).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from stsampler.config import SamplerConfig
from stsampler.errors import ConfigError


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


class TaskAdaptiveLearner(nn.Module):
    """Support features -> task latent f_t -> (w2, w_s).

    Encoder: ``in_dim -> hidden -> ReLU -> 2 * latent`` giving mu and log variance. In training
    ``f_t = mu + exp(logvar / 2) * eps`` with ``eps ~ N(0, I)`` (unless not ``sample_in_train``); in
    evaluation ``f_t = mu``. Generators: linear ``latent -> ts_dim`` and ``latent -> sa_dim``; their
    output (used as a gate ``1 + tanh(.)`` on the shared weights when ``residual``) is divided by
    its L2 norm.

    Args:
        in_dim: support feature size (the scan feature g_X, 1024).
        ts_dim: size of w2 (the evaluator's hidden width), or None to generate no w2.
        sa_dim: size of w_s (saliency channels C), or None to generate no w_s.
        sample_in_train: sample f_t in training (the paper); False uses mu there too.
        residual: gate the shared weights passed to :meth:`forward`, from zero-initialised
            generators (see the module docstring); False is the paper's form.
        hidden: encoder hidden width.
        latent: task latent size.
    """

    def __init__(
        self,
        in_dim: int,
        ts_dim: int | None,
        sa_dim: int | None,
        *,
        sample_in_train: bool,
        residual: bool,
        hidden: int = 256,
        latent: int = 128,
    ) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 2 * latent)
        )
        self.gen_ts = nn.Linear(latent, ts_dim) if ts_dim else None
        self.gen_sa = nn.Linear(latent, sa_dim) if sa_dim else None
        self.sample_in_train = sample_in_train
        self.residual = residual
        if residual:
            for gen in (self.gen_ts, self.gen_sa):
                if gen is not None:
                    nn.init.zeros_(gen.weight)
                    nn.init.zeros_(gen.bias)

    def forward(
        self,
        support_features: torch.Tensor,
        generator: torch.Generator | None = None,
        shared_ts: torch.Tensor | None = None,
        shared_sa: torch.Tensor | None = None,
    ) -> TaskParams:
        """Generate the episode's weights.

        Args:
            support_features: scan features g_X of the support videos only, ``[S, in_dim]``.
            generator: source of eps when sampling (for reproducible runs); eps is drawn on the
                generator's device and moved to the features' device.
            shared_ts: the shared evaluator weights ``[ts_dim]`` the gate scales (needed
                when ``residual`` and w2 is generated; ignored otherwise).
            shared_sa: the shared saliency weights ``[sa_dim]``, likewise.

        Raises:
            ValueError: ``residual`` and a needed shared weight is missing.

        Returns:
            :class:`TaskParams` with w2 ``[ts_dim]`` and w_s ``[sa_dim]`` (each None when disabled).
        """
        context = support_features.mean(dim=0)
        mu, logvar = self.encoder(context).chunk(2, dim=-1)
        latent = mu
        if self.training and self.sample_in_train:
            draw_device = generator.device if generator is not None else mu.device
            eps = torch.randn(mu.shape, generator=generator, device=draw_device, dtype=mu.dtype).to(mu.device)
            latent = mu + (0.5 * logvar).exp() * eps
        w2 = self._generate(self.gen_ts, latent, shared_ts, "shared_ts")
        w_s = self._generate(self.gen_sa, latent, shared_sa, "shared_sa")
        return TaskParams(w2=w2, w_s=w_s, mu=mu, logvar=logvar)

    def _generate(
        self, gen: nn.Linear | None, latent: torch.Tensor, shared: torch.Tensor | None, name: str
    ) -> torch.Tensor | None:
        """Unit-norm weights from ``gen(latent)`` (gating ``shared`` when residual), or None without ``gen``."""
        if gen is None:
            return None
        theta = gen(latent)
        if self.residual:
            if shared is None:
                raise ValueError(f"a residual task learner needs {name}, the weights its gate scales")
            theta = shared * (1.0 + torch.tanh(theta))
        return F.normalize(theta, dim=-1)


def build_task_learner(
    cfg: SamplerConfig, feature_dim: int, ts_dim: int | None, sa_dim: int | None
) -> TaskAdaptiveLearner | None:
    """The task learner of ``cfg`` (None unless ``cfg.task_adaptive``).

    Args:
        feature_dim: size of the scan feature g_X.
        ts_dim: size of the selector's w2, or None without a temporal selector.
        sa_dim: size of the amplifier's w_s, or None when its saliency takes no weights.

    Raises:
        ConfigError: task-adaptive with nothing to adapt (no selector and no weighted saliency).
    """
    if not cfg.task_adaptive:
        return None
    if ts_dim is None and sa_dim is None:
        raise ConfigError(
            "sampler.task_adaptive needs sampler.temporal=true, or sampler.spatial=true with "
            "sampler.saliency=paper: otherwise there is no weight to generate"
        )
    x = cfg.experimental
    return TaskAdaptiveLearner(
        feature_dim, ts_dim, sa_dim, sample_in_train=x.task_sample_latent, residual=x.task_residual
    )
