"""Tests of the hard and perturbed top-k operators and the sigma schedule."""
from __future__ import annotations

import pytest
import torch

from stsampler.ops.topk import hard_topk, perturbed_topk, sigma_at


def _noise(seed: int, n: int, b: int, m: int, noise: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Z and grad_nu(Z) ``[N, B, M]`` as perturbed_topk draws them (``[B, N, M]``) from a seeded generator."""
    gen = torch.Generator().manual_seed(seed)
    if noise == "normal":
        z = torch.randn((b, n, m), generator=gen).transpose(0, 1)
        return z, z
    e = torch.empty((b, n, m)).exponential_(generator=gen).clamp_min(torch.finfo(torch.float32).tiny)
    e = e.transpose(0, 1)
    return -torch.log(e), 1.0 - e


def _dense_selection(perturbed: torch.Tensor, k: int) -> torch.Tensor:
    """One-hot rows ``[..., k, M]`` of the sorted top-k of ``perturbed [..., M]``, built densely."""
    idx = torch.topk(perturbed, k, dim=-1).indices.sort(dim=-1).values
    return torch.nn.functional.one_hot(idx, perturbed.shape[-1]).to(perturbed.dtype)


def _inner(selection: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """<Y, G> over the last two dims: ``[..., B, k, M] x [B, k, M] -> [..., B]``."""
    return (selection * grad).sum(dim=(-1, -2))


def test_rows_sum_to_one_and_shape() -> None:
    scores = torch.rand(4, 16, generator=torch.Generator().manual_seed(0))
    out = perturbed_topk(scores, 8, num_samples=64, generator=torch.Generator().manual_seed(1))
    assert out.shape == (4, 8, 16)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.sum(dim=-1), torch.ones(4, 8))
    # Each frame is picked at most once per sample, so its total over rows is a frequency <= 1.
    assert (out.sum(dim=1) <= 1 + 1e-6).all()
    torch.testing.assert_close(out.sum(dim=(1, 2)), torch.full((4,), 8.0))


def test_single_sample_is_a_hard_selection_in_temporal_order() -> None:
    scores = torch.rand(5, 12, generator=torch.Generator().manual_seed(2))
    out = perturbed_topk(scores, 6, num_samples=1, sigma=0.3, generator=torch.Generator().manual_seed(3))
    assert set(out.unique().tolist()) == {0.0, 1.0}
    positions = out.argmax(dim=-1)
    assert (positions[:, 1:] > positions[:, :-1]).all()


def test_soft_rows_follow_temporal_order() -> None:
    scores = torch.rand(3, 16, generator=torch.Generator().manual_seed(4))
    out = perturbed_topk(scores, 5, num_samples=300, sigma=0.5, generator=torch.Generator().manual_seed(5))
    # In every sample the frame of row r + 1 comes after the frame of row r, so row r + 1's
    # cumulative distribution over frames is pointwise below row r's.
    cdf = out.cumsum(dim=-1)
    assert (cdf[:, 1:] <= cdf[:, :-1] + 1e-6).all()
    mean_position = (out * torch.arange(16.0)).sum(dim=-1)
    assert (mean_position[:, 1:] > mean_position[:, :-1]).all()


def test_same_generator_seed_gives_same_output() -> None:
    scores = torch.rand(2, 10, generator=torch.Generator().manual_seed(6))
    a = perturbed_topk(scores, 4, num_samples=20, sigma=0.2, generator=torch.Generator().manual_seed(7))
    b = perturbed_topk(scores, 4, num_samples=20, sigma=0.2, generator=torch.Generator().manual_seed(7))
    c = perturbed_topk(scores, 4, num_samples=20, sigma=0.2, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_hard_topk_order_and_ties() -> None:
    scores = torch.tensor([[0.5, 0.9, 0.5, 0.9, 0.5, 0.1], [0.3, 0.3, 0.3, 0.3, 0.3, 0.3]])
    out = hard_topk(scores, 3)
    assert out.shape == (2, 3, 6) and out.dtype == scores.dtype
    # Earlier frames win ties: row 0 takes both 0.9 frames and the first 0.5; row 1 the first three.
    assert out.argmax(dim=-1).tolist() == [[0, 1, 3], [0, 1, 2]]


def test_hard_topk_picks_the_k_largest_distinct_frames_in_order() -> None:
    scores = torch.randn(6, 20, generator=torch.Generator().manual_seed(9))
    out = hard_topk(scores, 7)
    assert ((out == 0) | (out == 1)).all()
    torch.testing.assert_close(out.sum(dim=-1), torch.ones(6, 7))
    picked = out.argmax(dim=-1)
    assert (picked[:, 1:] > picked[:, :-1]).all()
    expected = torch.topk(scores, 7).indices.sort(dim=-1).values
    assert torch.equal(picked, expected)


@pytest.mark.parametrize("noise", ["normal", "gumbel"])
@pytest.mark.parametrize("control_variate", [False, True])
def test_backward_matches_brute_force_estimator(noise: str, control_variate: bool) -> None:
    b, m, k, n, sigma, seed = 2, 5, 3, 7, 0.4, 11
    scores = torch.rand(b, m, generator=torch.Generator().manual_seed(10), requires_grad=True)
    grad = torch.randn(b, k, m, generator=torch.Generator().manual_seed(12))
    out = perturbed_topk(
        scores, k, num_samples=n, sigma=sigma, noise=noise,
        control_variate=control_variate, generator=torch.Generator().manual_seed(seed),
    )
    out.backward(grad)

    z, grad_nu = _noise(seed, n, b, m, noise)
    selections = _dense_selection(scores.detach() + sigma * z, k)  # [N, B, k, M]
    torch.testing.assert_close(out.detach(), selections.mean(dim=0))
    if control_variate:
        selections = selections - _dense_selection(scores.detach(), k)
    # Full Jacobian estimate J[b, r, m, m'] of Y_hat[b, r, m] w.r.t. s[b, m'], then contract with G.
    jacobian = torch.einsum("nbrm,nbj->brmj", selections, grad_nu) / (n * sigma)
    expected = torch.einsum("brm,brmj->bj", grad, jacobian)
    torch.testing.assert_close(scores.grad, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("noise", ["normal", "gumbel"])
def test_gradient_mean_matches_finite_difference_of_smoothed_objective(noise: str) -> None:
    """The estimator is unbiased for grad F, F(s) = E_Z <Y(s + sigma Z), G>.

    Both sides are Monte-Carlo estimates with N = 100k samples; the tolerance is 4.5 combined
    standard errors (measured from the per-sample terms) plus 0.01 for the O(h^2) bias of the
    central difference (F is smooth on the scale sigma = 0.5 >> h = 0.05).
    """
    m, k, n, sigma, h = 4, 2, 100_000, 0.5, 0.05
    scores = torch.tensor([[0.1, 0.6, 0.4, 0.3]], requires_grad=True)
    grad = torch.randn(1, k, m, generator=torch.Generator().manual_seed(13))

    out = perturbed_topk(
        scores, k, num_samples=n, sigma=sigma, noise=noise, control_variate=True,
        generator=torch.Generator().manual_seed(14),
    )
    out.backward(grad)

    z, grad_nu = _noise(15, n, 1, m, noise)
    base = _inner(_dense_selection(scores.detach(), k), grad)
    terms = (_inner(_dense_selection(scores.detach() + sigma * z, k), grad) - base)[..., None]
    estimator_se = (terms * grad_nu / sigma).std(dim=0) / n**0.5

    eye = torch.eye(m)
    plus = _inner(_dense_selection(scores.detach() + h * eye[:, None, :] + sigma * z[:, None], k), grad)
    minus = _inner(_dense_selection(scores.detach() - h * eye[:, None, :] + sigma * z[:, None], k), grad)
    per_sample = (plus - minus).squeeze(-1) / (2 * h)  # [N, M]: common noise on both sides
    finite_difference = per_sample.mean(dim=0)
    fd_se = per_sample.std(dim=0) / n**0.5

    tolerance = 4.5 * (estimator_se.squeeze(0) ** 2 + fd_se**2).sqrt() + 0.01
    assert (scores.grad[0] - finite_difference).abs().le(tolerance).all(), (
        scores.grad, finite_difference, tolerance
    )
    # The derivative is not trivially zero, so the comparison has teeth.
    assert finite_difference.abs().max() > 5 * tolerance.max()


def test_control_variate_keeps_mean_and_lowers_variance() -> None:
    rows, m, k, n, sigma = 400, 8, 3, 20, 0.1
    one = torch.rand(1, m, generator=torch.Generator().manual_seed(16))
    scores = one.expand(rows, m).clone().requires_grad_(True)
    grad = torch.randn(1, k, m, generator=torch.Generator().manual_seed(17)).expand(rows, k, m)
    estimates = {}
    for control_variate in (False, True):
        scores.grad = None
        out = perturbed_topk(
            scores, k, num_samples=n, sigma=sigma, control_variate=control_variate,
            generator=torch.Generator().manual_seed(18),
        )
        out.backward(grad)
        estimates[control_variate] = scores.grad.clone()  # one independent estimate per row
    plain, controlled = estimates[False], estimates[True]
    assert controlled.var(dim=0).sum() < 0.5 * plain.var(dim=0).sum()
    # Same noise in both runs: the difference is -c * mean_n(Z) / sigma, which has mean zero.
    difference = controlled - plain
    se = difference.std(dim=0) / rows**0.5
    assert (difference.mean(dim=0).abs() <= 4.5 * se + 1e-6).all()


def test_bfloat16_scores() -> None:
    scores = torch.rand(3, 16, generator=torch.Generator().manual_seed(19)).bfloat16().requires_grad_(True)
    out = perturbed_topk(scores, 8, num_samples=50, generator=torch.Generator().manual_seed(20))
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float().sum(dim=-1), torch.ones(3, 8), atol=1e-2, rtol=0)
    out.float().pow(2).sum().backward()
    assert scores.grad is not None and scores.grad.dtype == torch.bfloat16
    assert torch.isfinite(scores.grad.float()).all()


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"k": 0}, "k"),
        ({"k": 17}, "k"),
        ({"num_samples": 0}, "num_samples"),
        ({"sigma": 0.0}, "sigma"),
        ({"sigma": -1.0}, "sigma"),
        ({"noise": "uniform"}, "noise"),
    ],
)
def test_argument_validation(kwargs: dict, name: str) -> None:
    call = {"k": 4, **kwargs}
    with pytest.raises(ValueError, match=name):
        perturbed_topk(torch.rand(2, 16), **call)


def test_hard_topk_validation() -> None:
    with pytest.raises(ValueError, match="k"):
        hard_topk(torch.rand(2, 4), 5)
    with pytest.raises(ValueError, match="scores"):
        hard_topk(torch.rand(4), 2)


def test_sigma_schedule() -> None:
    assert sigma_at(0) == pytest.approx(0.05)
    assert sigma_at(999) == pytest.approx(0.05)
    assert sigma_at(1000) == pytest.approx(0.04)
    assert sigma_at(2500) == pytest.approx(0.05 * 0.8**2)
    assert sigma_at(100_000) == pytest.approx(0.01)
    assert sigma_at(3000, sigma0=1.0, decay=0.5, every=1000, floor=0.0) == pytest.approx(0.125)
    with pytest.raises(ValueError, match="episode"):
        sigma_at(-1)
