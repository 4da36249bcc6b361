"""An exponential moving average of a model's weights (``train.ema_decay``), the weights a run validates and tests.

After every optimiser step each floating-point entry of the model's ``state_dict`` (parameters and
batch-norm statistics) moves towards the current one, ``average <- decay * average + (1 - decay) *
current``; integer entries (batch-norm step counts) are copied. Training itself continues from the
current weights. The average lives beside the model rather than in a copy of it, because the
recogniser also carries state that is not a weight (the sampler's perturbation schedule and random
generators): for validation and checkpoints the average is swapped into the model and back.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Mapping

import torch
from torch import nn


class WeightAverage:
    """The moving average of ``model``'s ``state_dict``.

    Args:
        model: the model whose weights are averaged (its current weights start the average).
        decay: in ``[0, 1)``; the average's memory is about ``1 / (1 - decay)`` optimiser steps.
        state: a saved average (:meth:`state_dict`) to continue from, e.g. on resume.
    """

    def __init__(self, model: nn.Module, decay: float, state: Mapping[str, torch.Tensor] | None = None) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"the average's decay must be in [0, 1), got {decay}")
        self.decay = decay
        current = model.state_dict()
        source = current if state is None else state
        self.average = {name: source[name].detach().to(value.device).clone() for name, value in current.items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards ``model``'s current weights (call after each optimiser step)."""
        for name, value in model.state_dict().items():
            average = self.average[name]
            if average.is_floating_point():
                average.lerp_(value, 1.0 - self.decay)
            else:
                average.copy_(value)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The averaged weights, keyed as ``model.state_dict()``."""
        return self.average

    @contextlib.contextmanager
    def applied(self, model: nn.Module) -> Iterator[None]:
        """Within the block ``model`` holds the averaged weights; its own weights come back after it."""
        current = {name: value.detach().clone() for name, value in model.state_dict().items()}
        model.load_state_dict(self.average)
        try:
            yield
        finally:
            model.load_state_dict(current)
