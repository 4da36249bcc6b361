"""ImageNet weights through torchvision's weights API, with a clear message when they cannot be fetched.

Used by the backbones and by the sampler's scanner, so the lowest layer holds it.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import torch
import torchvision
from torch import nn

from stsampler.errors import CheckpointError


def load_pretrained(builder: Callable[..., nn.Module], weights: torchvision.models.WeightsEnum) -> nn.Module:
    """``builder(weights=weights)`` (a torchvision model factory), failing with what to do when the
    ImageNet weights cannot be fetched (e.g. no network access).

    torchvision looks for the weights file in ``torch.hub.get_dir()/checkpoints`` and downloads it
    there when it is absent; the message names that file and folder.

    Raises:
        CheckpointError: the weights are not in the cache and cannot be downloaded.
    """
    try:
        return builder(weights=weights)
    except (OSError, RuntimeError) as exc:  # URLError is an OSError; a bad download fails the hash check
        file_name = os.path.basename(urlparse(weights.url).path)
        folder = Path(torch.hub.get_dir()) / "checkpoints"
        raise CheckpointError(
            f"could not fetch the ImageNet weights {file_name} ({exc}). Without network access, download "
            f"{weights.url} elsewhere and put it in {folder} (the torch hub cache), or pass a local "
            "state_dict as model.weights_path=...; or train from scratch with "
            "model.pretrained=false sampler.scanner_pretrained=false"
        ) from None
