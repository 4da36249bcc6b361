"""Parameter-free tensor maps shared by the sampler and the heads: position encoding and min-max scaling."""
from __future__ import annotations

import math

import torch

_EPS = 1e-6


def sinusoidal_encoding(length: int, dim: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Transformer position encoding (Vaswani et al. 2017), float32 ``[length, dim]``.

    Channel 2j of position i holds ``sin(i / 10000^(2j / dim))`` and channel 2j + 1 the matching
    cosine; an odd ``dim`` ends with a sine channel.
    """
    position = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)
    frequency = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    encoding = torch.zeros(length, dim, device=device)
    encoding[:, 0::2] = torch.sin(position * frequency)
    encoding[:, 1::2] = torch.cos(position * frequency[: dim // 2])
    return encoding


def minmax_normalise(x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """Rescale ``x`` to [0, 1] over ``dims`` (same shape; a constant slice becomes all zeros)."""
    low = x.amin(dim=dims, keepdim=True)
    high = x.amax(dim=dims, keepdim=True)
    return (x - low) / (high - low + _EPS)
