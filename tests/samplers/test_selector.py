"""Temporal selector: normalised scores, hard top-k in evaluation, perturbed top-k in training."""
from __future__ import annotations

import torch

from stsampler.ops.topk import hard_topk
from stsampler.samplers.selector import TemporalSelector

B, M, T, D, HIDDEN = 6, 8, 4, 16, 32


def make(**kwargs: object) -> tuple[TemporalSelector, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    options = {"num_samples": 64, "sigma": 0.05, "noise": "normal", "control_variate": False, "pe_scale": 0.1} | kwargs
    selector = TemporalSelector(feature_dim=D, num_frames=T, hidden=HIDDEN, **options)
    features = torch.randn(B, M, D)
    return selector, features, features.mean(dim=1)


def test_scores_are_minmax_normalised() -> None:
    selector, f, g = make()
    scores = selector.eval()(f, g).scores
    assert scores.shape == (B, M)
    assert torch.all((scores >= 0) & (scores <= 1))
    torch.testing.assert_close(scores.amin(dim=1), torch.zeros(B))
    torch.testing.assert_close(scores.amax(dim=1), torch.ones(B), atol=1e-4, rtol=0)


def test_constant_scores_are_safe() -> None:
    selector, f, g = make()
    with torch.no_grad():
        selector.w1.weight.zero_()
    scores = selector.eval()(f, g).scores
    assert torch.isfinite(scores).all()


def test_eval_is_deterministic_hard_topk() -> None:
    selector, f, g = make()
    selector.eval()
    first, second = selector(f, g), selector(f, g)
    torch.testing.assert_close(first.indicator, second.indicator)
    torch.testing.assert_close(first.indicator, hard_topk(first.scores, T))
    assert first.indices.dtype == torch.int64
    assert torch.all(first.indices[:, 1:] > first.indices[:, :-1])
    torch.testing.assert_close(first.indices, first.indicator.argmax(dim=-1))


def test_training_indicator_rows_sum_to_one_and_is_seeded() -> None:
    selector, f, g = make()
    selector.train()
    out = selector(f, g, generator=torch.Generator().manual_seed(1))
    assert out.indicator.shape == (B, T, M)
    torch.testing.assert_close(out.indicator.sum(dim=-1), torch.ones(B, T))
    assert not torch.all((out.indicator == 0) | (out.indicator == 1)), "a soft indicator was expected"
    again = selector(f, g, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(out.indicator, again.indicator)
    torch.testing.assert_close(out.indices, hard_topk(out.scores, T).argmax(dim=-1))


def test_sigma_attribute_is_used() -> None:
    selector, f, g = make()
    selector.train()
    selector.sigma = 1e-6
    nearly_hard = selector(f, g, generator=torch.Generator().manual_seed(1)).indicator
    torch.testing.assert_close(nearly_hard, hard_topk(selector.score(f, g), T))
    selector.sigma = 0.5
    soft = selector(f, g, generator=torch.Generator().manual_seed(1)).indicator
    assert not torch.allclose(soft, nearly_hard)


def test_gradient_reaches_evaluator_through_indicator() -> None:
    selector, f, g = make()
    selector.train()
    out = selector(f, g, generator=torch.Generator().manual_seed(2))
    target = torch.randn(B, T, M, generator=torch.Generator().manual_seed(3))
    (out.indicator * target).sum().backward()
    assert selector.w1.weight.grad is not None and selector.w1.weight.grad.abs().sum() > 0
    assert selector.w2.grad is not None and selector.w2.grad.abs().sum() > 0


def test_generated_w2_replaces_own_parameter() -> None:
    selector, f, g = make()
    selector.eval()
    own = selector(f, g).scores
    raw = torch.randn(B, HIDDEN, generator=torch.Generator().manual_seed(4))
    generated = torch.nn.functional.normalize(raw, dim=-1)
    per_video = selector(f, g, w2=generated).scores
    assert not torch.allclose(per_video, own)
    torch.testing.assert_close(selector(f[:1], g[:1], w2=generated[0]).scores, per_video[:1])


def test_position_encoding_is_scaled_by_pe_scale() -> None:
    torch.manual_seed(0)
    same_frames = torch.randn(2, 1, 16).expand(2, 6, 16)
    video = same_frames.mean(dim=1)
    perturbation = {"num_samples": 8, "sigma": 0.05, "noise": "normal", "control_variate": False}
    without = TemporalSelector(feature_dim=16, num_frames=2, hidden=8, pe_scale=0.0, **perturbation).eval()
    with_pe = TemporalSelector(feature_dim=16, num_frames=2, hidden=8, pe_scale=0.1, **perturbation).eval()
    with_pe.load_state_dict(without.state_dict())
    # Identical frames differ only by their position: no encoding, no preference.
    assert torch.allclose(without.score(same_frames, video), torch.zeros(2, 6))
    assert with_pe.score(same_frames, video).amax() > 0.5
