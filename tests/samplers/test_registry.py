"""The SAMPLERS registry: one builder per ``sampler.kind``, all reading the one SamplerConfig."""
from __future__ import annotations

from typing import get_args, get_type_hints

import pytest
import torch

from stsampler.config import SamplerConfig, SamplerExperiments
from stsampler.samplers import SAMPLERS, build_sampler
from stsampler.samplers.baselines import MotionSampler, RandomSampler, UniformSampler
from stsampler.samplers.learned import STSampler


def test_every_config_kind_is_registered() -> None:
    kinds = get_args(get_type_hints(SamplerConfig)["kind"])
    assert set(SAMPLERS) == set(kinds)


@pytest.mark.parametrize(
    ("kind", "cls"),
    [("uniform", UniformSampler), ("oracle", UniformSampler), ("random", RandomSampler), ("motion", MotionSampler)],
)
def test_baselines_take_t_from_the_config(kind: str, cls: type) -> None:
    sampler = build_sampler(SamplerConfig(kind=kind, num_frames=3), seed=1)
    assert type(sampler) is cls and sampler.num_frames == 3


def test_random_sampler_is_seeded_by_the_run_seed() -> None:
    clips = torch.zeros(2, 16, 3, 4, 4)
    flags = torch.zeros(2, dtype=torch.bool)
    draw = [build_sampler(SamplerConfig(kind="random", num_frames=4), seed=s)(clips, flags).indices for s in (0, 0, 1)]
    assert torch.equal(draw[0], draw[1]) and not torch.equal(draw[0], draw[2])


def test_learned_sampler_reads_every_part_from_the_config() -> None:
    cfg = SamplerConfig(
        num_frames=3, scanner_pretrained=False, scan_size=48, max_zoom=2.5, num_samples=7, sigma0=0.2,
        saliency_trains_scanner=False,
        experimental=SamplerExperiments(
            soft_saliency=False, task_sample_latent=False, task_residual=False, control_variate=False,
            scanner_freeze_bn=True, noise="gumbel", pe_scale=0.5,
        ),
    )
    sampler = build_sampler(cfg)
    assert isinstance(sampler, STSampler) and sampler.num_frames == 3
    assert sampler.scanner.scan_size == 48 and sampler.scanner.freeze_bn
    selector = sampler.selector
    assert (selector.num_frames, selector.num_samples, selector.sigma, selector.noise) == (3, 7, 0.2, "gumbel")
    assert not selector.control_variate and selector.pe_scale == 0.5 and sampler.sigma == 0.2
    assert sampler.amplifier.max_zoom == 2.5 and sampler.amplifier.variant == "paper"
    learner = sampler.task_learner
    assert not learner.residual and not learner.sample_in_train
    assert not selector.w2.requires_grad and not sampler.amplifier.w_s.requires_grad  # unused by the paper's form
    assert not sampler.soft_saliency and not sampler.saliency_trains_scanner


def test_config_defaults_are_the_api_defaults() -> None:
    sampler = STSampler.from_config(SamplerConfig(scanner_pretrained=False))
    assert sampler.selector.control_variate and sampler.task_learner.residual and sampler.soft_saliency
    assert not sampler.scanner.freeze_bn  # a scanner trained from scratch learns its statistics


def test_state_dict_layout_is_what_checkpoints_hold() -> None:
    """Checkpoints written before the sampler was assembled from parts name these tensors."""
    state = build_sampler(SamplerConfig(scanner_pretrained=False)).state_dict()
    own = {k: tuple(v.shape) for k, v in state.items() if not k.startswith("scanner.")}
    assert own == {
        "selector.w2": (512,), "selector.w1.weight": (512, 2048), "selector.w1.bias": (512,),
        "amplifier.w_s": (336,),
        "task_learner.encoder.0.weight": (256, 1024), "task_learner.encoder.0.bias": (256,),
        "task_learner.encoder.2.weight": (256, 256), "task_learner.encoder.2.bias": (256,),
        "task_learner.gen_ts.weight": (512, 128), "task_learner.gen_ts.bias": (512,),
        "task_learner.gen_sa.weight": (336, 128), "task_learner.gen_sa.bias": (336,),
    }
    assert sum(k.startswith("scanner.") for k in state) == 336
