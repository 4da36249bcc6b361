"""STSampler: ablation switches, query independence, determinism, plan/apply, gradients."""
from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from stsampler.config import SamplerConfig, SamplerExperiments
from stsampler.errors import ConfigError, StsamplerError
from stsampler.samplers.amplifier import SpatialAmplifier
from stsampler.samplers.learned import STSampler, clip_saliency

B, M, T, SIZE = 6, 8, 4, 32
SUPPORT = torch.tensor([True, True, False, False, False, False])
ABLATIONS = [  # (temporal, spatial, task_adaptive): the paper's seven rows
    (False, False, False),
    (True, False, False),
    (False, True, False),
    (True, True, False),
    (True, False, True),
    (False, True, True),
    (True, True, True),
]


EXPERIMENTAL = {f.name for f in dataclasses.fields(SamplerExperiments)}


def config(**kwargs: object) -> SamplerConfig:
    """A small sampler config; keys of ``SamplerExperiments`` go to ``experimental``."""
    experimental = SamplerExperiments(**{k: v for k, v in kwargs.items() if k in EXPERIMENTAL})
    flat = {"num_frames": T, "num_samples": 32, "scan_size": SIZE, "scanner_pretrained": False}
    flat |= {k: v for k, v in kwargs.items() if k not in EXPERIMENTAL}
    return SamplerConfig(**flat, experimental=experimental)


def make(**kwargs: object) -> STSampler:
    torch.manual_seed(0)
    return STSampler.from_config(config(**kwargs))


def clips(size: int = SIZE, seed: int = 0) -> torch.Tensor:
    return torch.randn(B, M, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def full() -> STSampler:
    return make()


@pytest.mark.parametrize(("temporal", "spatial", "task_adaptive"), ABLATIONS)
def test_ablation_forward_backward(temporal: bool, spatial: bool, task_adaptive: bool) -> None:
    sampler = make(temporal=temporal, spatial=spatial, task_adaptive=task_adaptive).train()
    sampler.generator = torch.Generator().manual_seed(1)
    x = clips()
    out = sampler(x, SUPPORT)
    assert out.frames.shape == (B, T, 3, SIZE, SIZE)
    assert out.indices.shape == (B, T) and out.indices.dtype == torch.int64
    assert torch.all(out.indices[:, 1:] > out.indices[:, :-1])
    assert out.indicator.shape == (B, T, M)
    assert out.video_feature.shape == (B, sampler.feature_dim)
    assert (out.scores is not None) == temporal
    assert (out.saliency is not None) == spatial and (out.grid is not None) == spatial
    if not temporal:
        assert out.indices.tolist() == [[1, 3, 5, 7]] * B
    if not spatial:
        torch.testing.assert_close(out.frames, torch.einsum("btm,bmchw->btchw", out.indicator, x))
    (out.frames.square().mean() + out.video_feature.mean()).backward()
    assert sampler.scanner.stem[0].weight.grad.abs().sum() > 0


def test_shapes_at_default_scan_size() -> None:
    sampler = make(scan_size=64).eval()
    with torch.inference_mode():
        out = sampler(clips(size=64), SUPPORT)
    assert out.frames.shape == (B, T, 3, 64, 64)
    assert out.scores.shape == (B, M) and torch.all((out.scores >= 0) & (out.scores <= 1))
    assert out.saliency.shape == (B, T, 16, 16)
    assert out.grid.shape == (B, T, 64, 64, 2)
    assert sampler.feature_dim == 1024


def test_output_holds_the_scan_features_of_every_frame(full: STSampler) -> None:
    out = full.eval()(clips(), SUPPORT)
    assert out.frame_features.shape == (B, M, full.feature_dim)
    torch.testing.assert_close(out.video_feature, out.frame_features.mean(dim=1))


def test_eval_is_deterministic_and_hard(full: STSampler) -> None:
    full.eval()
    x = clips()
    with torch.inference_mode():
        a, b = full(x, SUPPORT), full(x, SUPPORT)
    torch.testing.assert_close(a.frames, b.frames)
    torch.testing.assert_close(a.indicator, F.one_hot(a.indices, M).float())


def assert_rows_equal(a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_query_independence_in_eval(full: STSampler) -> None:
    full.eval()
    x = clips()
    with torch.inference_mode():
        ref = full(x, SUPPORT)
        order = torch.tensor([0, 1, 5, 3, 2, 4])
        permuted = full(x[order], SUPPORT[order])
        reduced = full(x[[0, 1, 4]], SUPPORT[[0, 1, 4]])
    for field in ("frames", "indices", "scores", "saliency", "video_feature"):
        assert_rows_equal(getattr(permuted, field), getattr(ref, field)[order])
        assert_rows_equal(getattr(reduced, field), getattr(ref, field)[[0, 1, 4]])


def test_query_independence_in_training() -> None:
    sampler = make(scanner_freeze_bn=True).train()
    x = clips()

    def run(rows: list[int]) -> object:
        sampler.generator = torch.Generator().manual_seed(9)
        with torch.no_grad():
            return sampler(x[rows], SUPPORT[rows])

    ref = run(list(range(B)))
    order = [0, 1, 5, 3, 2, 4]
    permuted = run(order)
    for field in ("indices", "scores", "video_feature"):
        assert_rows_equal(getattr(permuted, field), getattr(ref, field)[order])
    # The perturbation noise is drawn row by row: dropping trailing queries keeps every other row.
    reduced = run([0, 1, 2, 3])
    for field in ("frames", "indicator", "saliency", "indices", "scores"):
        assert_rows_equal(getattr(reduced, field), getattr(ref, field)[:4])


def test_training_is_reproducible_with_generator() -> None:
    sampler = make().train()
    outs = []
    for _ in range(2):
        sampler.generator = torch.Generator().manual_seed(4)
        with torch.no_grad():
            outs.append(sampler(clips(), SUPPORT).frames)
    torch.testing.assert_close(outs[0], outs[1])


def test_queries_do_not_change_task(full: STSampler) -> None:
    full.eval()
    x, other = clips(), clips(seed=1)
    mixed = torch.cat([x[:2], other[2:]])
    with torch.inference_mode():
        g = full.scan(x)[1]
        g_mixed = full.scan(mixed)[1]
    task, task_mixed = full.task_params(g[:2]), full.task_params(g_mixed[SUPPORT])
    torch.testing.assert_close(task.w2, task_mixed.w2)
    torch.testing.assert_close(task.w_s, task_mixed.w_s)


def test_cached_task_for_query_batches(full: STSampler) -> None:
    full.eval()
    x = clips()
    with torch.inference_mode():
        episode = full(x, SUPPORT)
        task = full.task_params(full.scan(x[SUPPORT])[1])
        queries = full(x[~SUPPORT], SUPPORT[~SUPPORT], task=task)
        with pytest.raises(StsamplerError, match="support"):
            full(x[~SUPPORT], SUPPORT[~SUPPORT])
    assert_rows_equal(queries.frames, episode.frames[~SUPPORT])


def test_plan_on_low_res_then_apply_full_res(full: STSampler) -> None:
    full.eval()
    x = clips(size=2 * SIZE)
    scan_copy = F.interpolate(x.flatten(0, 1), size=SIZE, mode="bilinear", antialias=True)
    scan_copy = scan_copy.view(B, M, 3, SIZE, SIZE)
    with torch.inference_mode():
        ref = full(x, SUPPORT)
        plan = full.plan(scan_copy, SUPPORT)
        rows = torch.arange(B)[:, None]
        frames = full.apply(plan, x[rows, plan.indices])
    assert torch.equal(plan.indices, ref.indices)
    assert plan.saliency.shape == (B, T, 16, 16)
    assert_rows_equal(frames, ref.frames)


def test_sigma_reaches_selector(full: STSampler) -> None:
    full.sigma = 0.02
    assert full.selector.sigma == 0.02 and full.sigma == 0.02
    full.sigma = 0.05


@pytest.mark.parametrize("residual", [True, False])
def test_gradients_reach_all_parts(residual: bool) -> None:
    sampler = make(task_residual=residual).train()
    learner = sampler.task_learner
    if residual:  # the gate generators start at zero, so the encoder's first gradient is zero
        for gen in (learner.gen_ts, learner.gen_sa):
            torch.nn.init.normal_(gen.weight, std=0.1)
    sampler.generator = torch.Generator().manual_seed(2)
    out = sampler(clips(), SUPPORT)
    target = torch.randn(out.frames.shape, generator=torch.Generator().manual_seed(3))
    (out.frames * target).sum().backward()
    params = {
        "scanner": sampler.scanner.stem[0].weight,
        "scanner stage 4": sampler.scanner.stages[2][0].branch1[0].weight,
        "evaluator": sampler.selector.w1.weight,
        "task encoder": learner.encoder[0].weight,
        "task w2 generator": learner.gen_ts.weight,
        "task w_s generator": learner.gen_sa.weight,
    }
    if residual:
        params |= {"shared w2": sampler.selector.w2, "shared w_s": sampler.amplifier.w_s}
    for name, param in params.items():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    shared = (sampler.selector.w2, sampler.amplifier.w_s)
    assert all(w.requires_grad == residual for w in shared)


def test_fixed_evaluator_trains_the_scanner_through_the_scores_only() -> None:
    sampler = make(evaluator_learns=False, saliency_trains_scanner=False).train()
    learner = sampler.task_learner
    initial = {name: p.detach().clone() for name, p in sampler.selector.named_parameters()}
    fixed = [*sampler.selector.parameters(), *learner.gen_ts.parameters()]
    assert fixed and not any(p.requires_grad for p in fixed)
    assert all(p.requires_grad for p in [*sampler.scanner.parameters(), *learner.gen_sa.parameters()])
    sampler.generator = torch.Generator().manual_seed(2)
    out = sampler(clips(), SUPPORT)
    target = torch.randn(out.frames.shape, generator=torch.Generator().manual_seed(3))
    (out.frames * target).sum().backward()  # only through the selection and the warp, not g_X
    assert all(p.grad is None for p in fixed)
    assert sampler.scanner.stem[0].weight.grad.abs().sum() > 0
    optimizer = torch.optim.AdamW([p for p in sampler.parameters() if p.requires_grad], lr=0.1)
    optimizer.step()
    for name, p in sampler.selector.named_parameters():
        torch.testing.assert_close(p, initial[name], rtol=0, atol=0)


def test_explore_bypasses_the_selector_in_training_only() -> None:
    sampler = make().train()
    sampler.explore = True
    sampler.generator = torch.Generator().manual_seed(4)
    out = sampler(clips(), SUPPORT)
    assert out.scores is None
    assert torch.equal(out.indices // (M // T), torch.arange(T).expand(B, T))
    assert torch.equal(out.indicator, F.one_hot(out.indices, M).float())
    (out.frames.square().sum() + out.saliency.sum()).backward()
    assert sampler.selector.w1.weight.grad is None
    assert sampler.task_learner.gen_sa.weight.grad.abs().sum() > 0  # the amplifier still learns
    sampler.eval()
    with torch.inference_mode():
        assert sampler(clips(), SUPPORT).scores is not None


def test_task_adaptive_needs_something_to_adapt() -> None:
    with pytest.raises(ConfigError):
        make(temporal=False, spatial=False, task_adaptive=True)
    with pytest.raises(ConfigError):
        make(temporal=False, spatial=True, task_adaptive=True, saliency="code")
    learner = make().task_learner
    scanner = make().scanner
    with pytest.raises(ConfigError):
        STSampler(T, scanner, None, None, learner, soft_saliency=True, saliency_trains_scanner=True)
    parameter_free = make(temporal=False, spatial=True, task_adaptive=False, saliency="code")
    assert parameter_free.task_learner is None and parameter_free.selector is None
    assert list(parameter_free.amplifier.parameters()) == []


def test_soft_selection_without_autograd() -> None:
    sampler = make(spatial=False).train()
    sampler.generator = torch.Generator().manual_seed(5)
    sampler.sigma = 1.0
    x = clips()
    with torch.no_grad():
        out = sampler(x, SUPPORT)
    assert not torch.all((out.indicator == 0) | (out.indicator == 1))
    torch.testing.assert_close(out.frames, torch.einsum("btm,bmchw->btchw", out.indicator, x))


def test_eval_saliency_is_that_of_the_selected_frames(full: STSampler) -> None:
    full.eval()
    x = clips()
    with torch.inference_mode():
        out = full(x, SUPPORT)
        _, g, maps = full.scan(x)
        dense = full.amplifier.saliency(maps, full.task_params(g[SUPPORT]).w_s).view(B, M, 16, 16)
    assert_rows_equal(out.saliency, dense[torch.arange(B)[:, None], out.indices])


def test_hard_saliency_in_training_is_that_of_the_top_t_frames_and_does_not_train_the_scores() -> None:
    sampler = make(soft_saliency=False).train()
    sampler.generator = torch.Generator().manual_seed(6)
    sampler.sigma = 1.0
    x = clips()
    out = sampler(x, SUPPORT)
    assert not torch.all((out.indicator == 0) | (out.indicator == 1))  # the frames are still mixed
    with torch.no_grad():
        _, g, maps = sampler.scan(x)
        dense = sampler.amplifier.saliency(maps, sampler.task_params(g[SUPPORT]).w_s).view(B, M, 16, 16)
    assert out.saliency.shape == (B, T, 16, 16)
    assert_rows_equal(out.saliency.detach(), dense[torch.arange(B)[:, None], out.indices])
    out.saliency.sum().backward()
    assert sampler.selector.w1.weight.grad is None
    assert sampler.amplifier.w_s.grad.abs().sum() > 0


def test_random_init_scanner_learns_batch_norm_statistics_and_keeps_features_alive() -> None:
    random_init = make().train()
    frozen = make(scanner_freeze_bn=True).train()
    assert not random_init.scanner.freeze_bn and frozen.scanner.freeze_bn
    with torch.no_grad():
        live, _, _ = random_init.scan(clips())
        dead, _, _ = frozen.scan(clips())
    # Frozen initial statistics normalise nothing and a random ShuffleNet's features collapse.
    assert live.std(dim=1).mean() > 1e3 * dead.std(dim=1).mean()


def test_saliency_that_does_not_train_the_scanner_still_trains_w_s() -> None:
    detached = make(saliency_trains_scanner=False, temporal=False, task_adaptive=False).train()
    attached = make(temporal=False, task_adaptive=False).train()
    for sampler in (detached, attached):
        sampler(clips(), SUPPORT).saliency.sum().backward()
    assert all(p.grad is None for p in detached.scanner.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in attached.scanner.parameters())
    assert detached.amplifier.w_s.grad.abs().sum() > 0


def test_clip_warp_warps_every_selected_frame_of_a_video_by_the_max_of_their_maps() -> None:
    per_frame, per_clip = make().eval(), make(clip_warp=True).eval()
    x = clips()
    with torch.inference_mode():
        own = per_frame(x, SUPPORT)
        shared = per_clip(x, SUPPORT)
    assert torch.equal(shared.indices, own.indices)
    expected = own.saliency.amax(dim=1, keepdim=True).expand_as(own.saliency)
    assert_rows_equal(shared.saliency, expected)
    assert torch.equal(shared.grid, shared.grid[:, :1].expand_as(shared.grid))
    assert not torch.equal(own.grid, own.grid[:, :1].expand_as(own.grid))


def test_clip_warp_keeps_the_motion_that_per_frame_warps_remove() -> None:
    """An object moving right over T frames moves less than half as far once each frame is warped by its own map."""
    size, h = 32, 16
    frames = torch.zeros(1, T, 1, size, size)
    saliency = torch.zeros(1, T, h, h)
    for t in range(T):
        frames[0, t, 0, 14:18, 4 + 6 * t: 8 + 6 * t] = 1.0
        saliency[0, t, 7:9, 2 + 3 * t: 4 + 3 * t] = 1.0
    amplifier = SpatialAmplifier(1, "code", max_zoom=4.0)
    columns = torch.arange(size, dtype=torch.float32)

    def centre_columns(maps: torch.Tensor) -> torch.Tensor:
        warped, _ = amplifier(frames.flatten(0, 1), maps.flatten(0, 1))
        mass = warped[:, 0].sum(dim=1)
        return (mass * columns).sum(dim=1) / mass.sum(dim=1)

    own = centre_columns(saliency)
    shared = centre_columns(clip_saliency(saliency))
    assert (own.max() - own.min()) < 0.5 * (shared.max() - shared.min())
    assert torch.all(shared.diff() > 0)
