"""Position encoding and min-max scaling: closed forms on tiny inputs."""
from __future__ import annotations

import math

import torch

from stsampler.ops.encoding import minmax_normalise, sinusoidal_encoding


def test_sinusoidal_encoding_closed_form() -> None:
    pe = sinusoidal_encoding(5, 8)
    assert pe.shape == (5, 8) and pe.dtype == torch.float32
    torch.testing.assert_close(pe[0], torch.tensor([0.0, 1.0] * 4))
    for i in range(5):
        for j in range(4):
            angle = i / 10000 ** (2 * j / 8)
            assert math.isclose(pe[i, 2 * j], math.sin(angle), abs_tol=1e-6)
            assert math.isclose(pe[i, 2 * j + 1], math.cos(angle), abs_tol=1e-6)
    assert len({tuple(row.tolist()) for row in pe}) == 5


def test_sinusoidal_encoding_odd_dim_ends_with_a_sine() -> None:
    pe = sinusoidal_encoding(3, 5)
    assert pe.shape == (3, 5)
    assert math.isclose(pe[2, 4], math.sin(2 / 10000 ** (4 / 5)), abs_tol=1e-6)


def test_minmax_normalise_per_slice() -> None:
    x = torch.tensor([[1.0, 3.0, 2.0], [5.0, 5.0, 5.0]])
    out = minmax_normalise(x, dims=(1,))
    torch.testing.assert_close(out[0], torch.tensor([0.0, 1.0, 0.5]), atol=1e-5, rtol=0)
    assert torch.all(out[1] == 0)
