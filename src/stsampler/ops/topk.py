"""Top-k frame selection: hard (evaluation) and perturbed, differentiable (training).

The perturbed operator follows Berthet et al. 2020, "Learning with Differentiable Perturbed
Optimizers", as specified in ``docs/method.md`` section 3. Shapes: B videos, M frames, k selected
frames, N noise samples.

Forward: ``Y_hat[b] = 1/N sum_n Y_n[b]`` where ``Y_n[b]`` is the ``[k, M]`` one-hot matrix of the
top-k frames of ``s[b] + sigma Z_n[b]``, indices sorted ascending (row r is the r-th selected frame in
temporal order). Backward, with ``G = dL/dY_hat``::

    dL/ds[b] = 1/(N sigma) sum_n (<Y_n[b], G[b]> - c[b]) grad_nu(Z_n[b])

with ``grad_nu(Z) = Z`` (normal noise) or ``1 - exp(-Z)`` (Gumbel noise) and ``c[b] = <Y(s)[b], G[b]>``
(the unperturbed selection) when the control variate is on, 0 otherwise. ``<Y_n[b], G[b]>`` is a
gather of k entries of G at the saved indices: no one-hot tensor and no Jacobian is ever built, and
there is no factor k (a bug of the public code, which shares the noise across k copies of s).
"""
from __future__ import annotations

import torch

NOISES = ("normal", "gumbel")


def sigma_at(
    episode: int, sigma0: float = 0.05, decay: float = 0.8, every: int = 1000, floor: float = 0.01
) -> float:
    """The perturbation scale after ``episode`` training episodes (method.md section 3).

    ``sigma0 * decay ** (episode // every)``, never below ``floor``. A pure function of the episode
    count, so a run resumed from a checkpoint that stores the episode count gets the same sigma.
    """
    if episode < 0:
        raise ValueError(f"episode must be >= 0, got {episode}")
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    return max(floor, sigma0 * decay ** (episode // every))


def _check_scores(scores: torch.Tensor, k: int) -> None:
    if scores.dim() != 2:
        raise ValueError(f"scores must be [B, M], got shape {tuple(scores.shape)}")
    if not scores.is_floating_point():
        raise ValueError(f"scores must be a floating-point tensor, got {scores.dtype}")
    if not 1 <= k <= scores.shape[1]:
        raise ValueError(f"k must be in [1, M={scores.shape[1]}], got {k}")


def _sorted_topk_indices(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices ``[..., k]`` of the k largest entries of ``scores [..., M]``, ascending.

    Ties are broken towards the earlier frame: a stable descending sort keeps equal scores in index
    order, so the same frames win on every device.
    """
    order = torch.sort(scores, dim=-1, descending=True, stable=True).indices
    return order[..., :k].sort(dim=-1).values


def _one_hot_mean(indices: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Mean over n of the one-hot rows of ``indices [B, N, k]``: float32 ``[B, k, M]``.

    Counts are scattered into a ``[B * k * M]`` buffer, so memory stays ``O(B N k)`` for the
    indices plus ``O(B k M)`` for the result, never ``O(B N k M)``.
    """
    b, n, k = indices.shape
    rows = torch.arange(b * k, device=indices.device).view(b, 1, k) * num_frames
    flat = (rows + indices).reshape(-1)
    counts = torch.zeros(b * k * num_frames, dtype=torch.float32, device=indices.device)
    ones = torch.ones((), dtype=torch.float32, device=indices.device).expand(flat.shape)
    counts.scatter_add_(0, flat, ones)
    return (counts / n).view(b, k, num_frames)


def _gather_inner(grad: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """``<Y, G>`` per selection: ``grad [B, k, M]``, ``indices [B, ..., k]`` -> ``[B, ...]``.

    Sums the k entries ``G[b, r, indices[b, ..., r]]``.
    """
    b, k, m = grad.shape
    rows = torch.arange(b * k, device=grad.device).view(b, *([1] * (indices.dim() - 2)), k) * m
    return grad.reshape(-1)[rows + indices].sum(dim=-1)


def _draw_noise(
    shape: tuple[int, ...], noise: str, device: torch.device, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise ``Z`` and ``grad_nu(Z)``, float32 of ``shape``, on ``device``.

    Drawn on the generator's device (the scores' device without a generator) and moved to
    ``device``: a CPU generator with CUDA scores works but pays a host-to-device copy.
    """
    draw_device = generator.device if generator is not None else device
    if noise == "normal":
        z = torch.randn(shape, generator=generator, device=draw_device, dtype=torch.float32)
        z = z.to(device)
        return z, z
    # Gumbel(0, 1) = -log(E) with E ~ Exp(1); then grad_nu(Z) = 1 - exp(-Z) = 1 - E.
    e = torch.empty(shape, device=draw_device, dtype=torch.float32).exponential_(generator=generator)
    e = e.to(device).clamp_min(torch.finfo(torch.float32).tiny)
    return -torch.log(e), 1.0 - e


class _PerturbedTopK(torch.autograd.Function):
    """Autograd function behind :func:`perturbed_topk` (arguments validated by the caller)."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        scores: torch.Tensor,
        k: int,
        num_samples: int,
        sigma: float,
        noise: str,
        control_variate: bool,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        s = scores.detach().float()
        b, m = s.shape
        z, grad_nu = _draw_noise((b, num_samples, m), noise, s.device, generator)
        perturbed = torch.add(s.unsqueeze(1), z, alpha=sigma)
        indices = torch.topk(perturbed, k, dim=-1, sorted=False).indices.sort(dim=-1).values
        ctx.save_for_backward(indices, grad_nu, _sorted_topk_indices(s, k) if control_variate else None)
        ctx.sigma = sigma
        return _one_hot_mean(indices, m).to(scores.dtype)

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx, grad_output: torch.Tensor
    ) -> tuple[torch.Tensor | None, ...]:
        indices, grad_nu, base_indices = ctx.saved_tensors
        g = grad_output.float()
        weights = _gather_inner(g, indices)  # [B, N]
        if base_indices is not None:
            weights = weights - _gather_inner(g, base_indices).unsqueeze(1)
        num_samples = indices.shape[1]
        grad_scores = torch.bmm(weights.unsqueeze(1), grad_nu).squeeze(1) / (num_samples * ctx.sigma)
        return grad_scores.to(grad_output.dtype), None, None, None, None, None, None


def perturbed_topk(
    scores: torch.Tensor,
    k: int,
    num_samples: int = 500,
    sigma: float = 0.05,
    noise: str = "normal",
    control_variate: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Soft top-k indicator by perturbed optimisers, differentiable w.r.t. ``scores``.

    Args:
        scores: ``[B, M]`` float32 / bfloat16 / float16 (computation in float32).
        k: frames to select, ``1 <= k <= M``.
        num_samples: N noise samples (>= 1).
        sigma: noise scale (> 0); see :func:`sigma_at` for the training schedule.
        noise: ``"normal"`` or ``"gumbel"``.
        control_variate: subtract ``<Y(s), G>`` (unperturbed selection) in the gradient estimate:
            same mean, lower variance.
        generator: source of all random draws. Noise is drawn on the generator's device and moved to
            the scores' device; pass a generator on the scores' device to avoid the copy.

    Returns:
        ``[B, k, M]`` in ``scores.dtype``: row r is the frequency with which each frame was the r-th
        selected frame (selected frames in ascending, temporal order); every row sums to 1.

    Noise is drawn as one ``[B, N, M]`` tensor (batch-major). Memory: ``grad_nu(Z)`` ``[B, N, M]``
    float32 and the indices ``[B, N, k]`` int64
    are kept for backward; nothing of size ``N B k M`` is ever allocated.
    """
    _check_scores(scores, k)
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    if noise not in NOISES:
        raise ValueError(f"noise must be one of {NOISES}, got {noise!r}")
    return _PerturbedTopK.apply(scores, k, num_samples, sigma, noise, control_variate, generator)


def hard_topk(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Hard top-k indicator: ``scores [B, M]`` -> one-hot ``[B, k, M]`` in ``scores.dtype``.

    Row r is the one-hot of the r-th selected frame in ascending (temporal) order. Exactly k distinct
    frames are selected; among equal scores the earlier frame wins. No gradient flows to ``scores``.
    """
    _check_scores(scores, k)
    indices = _sorted_topk_indices(scores.detach(), k)
    return torch.nn.functional.one_hot(indices, scores.shape[1]).to(scores.dtype)
