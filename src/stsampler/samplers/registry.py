"""The samplers by ``sampler.kind``: each entry builds one from a :class:`~stsampler.config.SamplerConfig`.

A new sampler is one module with a :class:`~stsampler.samplers.base.FrameSampler` subclass and one
line here (plus its name in ``SamplerConfig.kind``).
"""
from __future__ import annotations

from collections.abc import Callable

from stsampler.config import SamplerConfig
from stsampler.errors import ConfigError
from stsampler.samplers.base import FrameSampler
from stsampler.samplers.baselines import MotionSampler, RandomSampler, UniformSampler
from stsampler.samplers.learned import STSampler

SamplerBuilder = Callable[[SamplerConfig, int], FrameSampler]

SAMPLERS: dict[str, SamplerBuilder] = {
    "uniform": UniformSampler.from_config,
    "random": RandomSampler.from_config,
    "motion": MotionSampler.from_config,
    "learned": STSampler.from_config,
    # The oracle's clips already hold just the T event frames (``data.events.OracleDataset``): take them all.
    "oracle": UniformSampler.from_config,
}
"""``sampler.kind`` -> builder ``(cfg, seed) -> FrameSampler``."""


def build_sampler(cfg: SamplerConfig, seed: int = 0) -> FrameSampler:
    """The frame sampler named by ``cfg.kind`` (``seed`` seeds a sampler's own random source).

    Raises:
        ConfigError: ``cfg.kind`` is not registered.
    """
    if cfg.kind not in SAMPLERS:
        raise ConfigError(f"unknown sampler.kind {cfg.kind!r}; known kinds: {', '.join(sorted(SAMPLERS))}")
    return SAMPLERS[cfg.kind](cfg, seed)
