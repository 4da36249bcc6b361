"""Frame samplers behind one interface: the learned STSampler and the training-free baselines."""
from stsampler.samplers.base import FrameSampler, SamplerOutput
from stsampler.samplers.baselines import MotionSampler, RandomSampler, UniformSampler
from stsampler.samplers.learned import SamplePlan, STSampler
from stsampler.samplers.registry import SAMPLERS, build_sampler

__all__ = [
    "SAMPLERS", "FrameSampler", "MotionSampler", "RandomSampler", "STSampler", "SamplePlan", "SamplerOutput",
    "UniformSampler", "build_sampler",
]
