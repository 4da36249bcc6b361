"""Task-adaptive learner: deterministic in evaluation, sampled in training, unit-norm outputs, residual form."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from stsampler.samplers.task_learner import TaskAdaptiveLearner

D, TS, SA = 32, 16, 12


def make(**kwargs: object) -> TaskAdaptiveLearner:
    """The paper's form (generated weights used outright) unless ``residual=True`` is passed."""
    torch.manual_seed(0)
    options = {"residual": False, "sample_in_train": True} | kwargs
    return TaskAdaptiveLearner(in_dim=D, hidden=24, latent=8, ts_dim=TS, sa_dim=SA, **options)


def support(n: int = 5) -> torch.Tensor:
    return torch.randn(n, D, generator=torch.Generator().manual_seed(1))


def test_shapes_and_unit_norm() -> None:
    out = make().eval()(support())
    assert out.w2.shape == (TS,) and out.w_s.shape == (SA,)
    assert out.mu.shape == (8,) and out.logvar.shape == (8,)
    torch.testing.assert_close(out.w2.norm(), torch.tensor(1.0))
    torch.testing.assert_close(out.w_s.norm(), torch.tensor(1.0))


def test_eval_uses_mu() -> None:
    learner = make().eval()
    first, second = learner(support()), learner(support())
    torch.testing.assert_close(first.w2, second.w2)
    expected = torch.nn.functional.normalize(learner.gen_ts(first.mu), dim=-1)
    torch.testing.assert_close(first.w2, expected)


def test_training_samples_and_is_seeded() -> None:
    learner = make().train()
    a = learner(support(), generator=torch.Generator().manual_seed(7))
    b = learner(support(), generator=torch.Generator().manual_seed(7))
    c = learner(support(), generator=torch.Generator().manual_seed(8))
    torch.testing.assert_close(a.w2, b.w2)
    assert not torch.allclose(a.w2, c.w2)
    assert not torch.allclose(a.w2, torch.nn.functional.normalize(learner.gen_ts(a.mu), dim=-1))


def test_sample_in_train_off_uses_mu_in_training() -> None:
    learner = make(sample_in_train=False).train()
    a = learner(support(), generator=torch.Generator().manual_seed(7))
    c = learner(support(), generator=torch.Generator().manual_seed(8))
    torch.testing.assert_close(a.w2, c.w2)
    torch.testing.assert_close(a.w2, F.normalize(learner.gen_ts(a.mu), dim=-1))


def test_context_is_the_support_mean() -> None:
    learner = make().eval()
    rows = support(4)
    permuted = learner(rows.flip(0))
    torch.testing.assert_close(learner(rows).w2, permuted.w2)
    torch.testing.assert_close(learner(rows).w2, learner(rows.mean(0, keepdim=True)).w2)
    assert not torch.allclose(learner(rows).w2, learner(rows[:2]).w2)


def test_disabled_generators() -> None:
    out = TaskAdaptiveLearner(in_dim=D, ts_dim=None, sa_dim=SA, residual=False, sample_in_train=True).eval()(support())
    assert out.w2 is None and out.w_s.shape == (SA,)


def test_gradients_reach_encoder_and_generators() -> None:
    learner = make().train()
    out = learner(support(), generator=torch.Generator().manual_seed(3))
    target = torch.randn(TS + SA, generator=torch.Generator().manual_seed(4))
    (torch.cat([out.w2, out.w_s]) * target).sum().backward()
    for module in (learner.encoder[0], learner.gen_ts, learner.gen_sa):
        assert module.weight.grad is not None and module.weight.grad.abs().sum() > 0


def shared() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(5)
    return F.normalize(torch.randn(TS, generator=gen), dim=0), F.normalize(torch.randn(SA, generator=gen), dim=0)


def test_residual_starts_at_the_shared_weights() -> None:
    learner = make(residual=True).train()
    shared_ts, shared_sa = shared()
    out = learner(support(), torch.Generator().manual_seed(7), shared_ts, shared_sa)
    torch.testing.assert_close(out.w2, shared_ts)
    torch.testing.assert_close(out.w_s, shared_sa)


def test_residual_learns_a_gate_that_depends_on_the_support() -> None:
    learner = make(residual=True).train()
    shared_ts, shared_sa = shared()
    shared_ts.requires_grad_(True)
    out = learner(support(), torch.Generator().manual_seed(3), shared_ts, shared_sa)
    target = torch.randn(TS, generator=torch.Generator().manual_seed(4))
    (out.w2 * target).sum().backward()
    assert learner.gen_ts.weight.grad.abs().sum() > 0 and shared_ts.grad.abs().sum() > 0
    with torch.no_grad():
        learner.gen_ts.weight.add_(0.5 * learner.gen_ts.weight.grad)
    learner.eval()
    first = learner(support(), None, shared_ts.detach(), shared_sa)
    other = learner(support() + 1.0, None, shared_ts.detach(), shared_sa)
    assert not torch.allclose(first.w2, shared_ts.detach())
    assert not torch.allclose(first.w2, other.w2)
    torch.testing.assert_close(first.w2.norm(), torch.tensor(1.0))


def test_residual_needs_the_shared_weights() -> None:
    shared_ts, _ = shared()
    with pytest.raises(ValueError, match="shared_sa"):
        make(residual=True)(support(), None, shared_ts, None)


def test_residual_gate_keeps_each_shared_weight_sign_and_bounds_its_scale() -> None:
    """However large the generated values, each weight lies between 0 and twice its shared value
    (before the norm): a task can reweight the shared evaluator but never turn it around."""
    learner = make(residual=True).eval()
    with torch.no_grad():
        learner.gen_ts.weight.normal_(std=50.0)
        learner.gen_ts.bias.normal_(std=50.0)
    shared_ts, shared_sa = shared()
    out = learner(support(), None, shared_ts, shared_sa)
    gate = 1 + torch.tanh(learner.gen_ts(out.mu))
    assert gate.min() < 0.1 and gate.max() > 1.9  # the generated values are far outside tanh's linear range
    torch.testing.assert_close(out.w2, F.normalize(shared_ts * gate, dim=0))
    assert (out.w2 * shared_ts >= 0).all()
    assert torch.dot(out.w2, shared_ts) > 0
