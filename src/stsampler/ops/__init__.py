"""Differentiable primitives: perturbed top-k selection and inverse-CDF spatial amplification."""
from stsampler.ops.amplify import amplify, amplify_grid
from stsampler.ops.topk import hard_topk, perturbed_topk, sigma_at

__all__ = ["amplify", "amplify_grid", "hard_topk", "perturbed_topk", "sigma_at"]
