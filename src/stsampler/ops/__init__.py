"""Differentiable primitives: perturbed top-k selection, inverse-CDF spatial amplification, encodings, resizing."""
from stsampler.ops.amplify import amplify, amplify_grid, sample_by_grid
from stsampler.ops.encoding import minmax_normalise, sinusoidal_encoding
from stsampler.ops.resize import resize_square
from stsampler.ops.topk import hard_topk, perturbed_topk, sigma_at

__all__ = [
    "amplify",
    "amplify_grid",
    "hard_topk",
    "minmax_normalise",
    "perturbed_topk",
    "resize_square",
    "sample_by_grid",
    "sigma_at",
    "sinusoidal_encoding",
]
