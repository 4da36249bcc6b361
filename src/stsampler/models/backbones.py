"""Frame encoders: a 2-D CNN mapping frames ``[N, 3, H, W]`` to pooled embeddings ``[N, D]``.

``build_backbone(name, pretrained, weights_path)`` is the only constructor the rest of the library
uses. Known names are the keys of :data:`BACKBONES`: torchvision ResNet-18/34/50 (classifier removed,
global-average-pooled) and ``smallcnn``, a four-block CNN for CPU-sized experiments at 64-112 px
(``smallcnn_max``: max-pooled; ``smallcnn_max_coords``: its first block also sees each pixel's position,
``docs/method.md`` section 9).
Every backbone runs in channels_last memory format; inputs are converted on entry.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path

import torch
import torchvision
from torch import nn

from stsampler.errors import CheckpointError, ConfigError
from stsampler.io import load_torch_file
from stsampler.pretrained import load_pretrained


class Backbone(nn.Module):
    """A frame encoder: ``forward(frames [N, 3, H, W]) -> [N, out_dim]``.

    Attributes:
        trunk: the wrapped network; its ``state_dict`` is what ``weights_path`` files hold.
        out_dim: size D of one frame embedding.
    """

    def __init__(self, trunk: nn.Module, out_dim: int) -> None:
        super().__init__()
        self.trunk = trunk
        self.out_dim = out_dim
        self.to(memory_format=torch.channels_last)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """Embed frames: float ``[N, 3, H, W]`` -> ``[N, out_dim]``."""
        return self.trunk(frames.contiguous(memory_format=torch.channels_last)).flatten(1)


def _resnet(
    factory: Callable[..., torchvision.models.ResNet],
    weights: torchvision.models.WeightsEnum,
    pretrained: bool,
) -> Backbone:
    """A torchvision ResNet with its ``fc`` replaced by the identity (output: pooled conv5 features)."""
    model = load_pretrained(factory, weights) if pretrained else factory(weights=None)
    out_dim = model.fc.in_features
    model.fc = nn.Identity()
    return Backbone(model, out_dim)


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """3x3 stride-2 convolution, batch norm, ReLU: halves the spatial size."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


SMALL_CNN_WIDTHS = (32, 64, 128, 256)


def small_cnn_blocks(widths: tuple[int, ...], in_channels: int = 3) -> list[nn.Sequential]:
    """The conv-BN-ReLU blocks of the small CNN, each stride 2, with ``widths`` output channels; the
    first takes ``in_channels`` (3 for RGB, 5 with :class:`CoordinateChannels` before it)."""
    channels = (in_channels, *widths)
    return [_conv_block(c_in, c_out) for c_in, c_out in zip(channels[:-1], channels[1:], strict=True)]


class CoordinateChannels(nn.Module):
    """Append each pixel's position as two channels: ``[N, C, H, W] -> [N, C + 2, H, W]``.

    Channel ``C`` is x and ``C + 1`` is y, both from -1 (left, top) to 1 (right, bottom), so that the
    convolutions after it can tell where in the frame a pattern is (a max-pooled CNN otherwise cannot:
    an object moving right and one moving down give the same pooled features).
    """

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """``[N, C, H, W] -> [N, C + 2, H, W]``, same dtype and device, channels_last (as the backbones run)."""
        n, _, h, w = frames.shape
        xs = torch.linspace(-1.0, 1.0, w, dtype=frames.dtype, device=frames.device).expand(n, 1, h, w)
        ys = torch.linspace(-1.0, 1.0, h, dtype=frames.dtype, device=frames.device).view(h, 1).expand(n, 1, h, w)
        return torch.cat([frames, xs, ys], dim=1).contiguous(memory_format=torch.channels_last)


def _small_cnn(
    pretrained: bool, pool: str = "avg", coordinates: bool = False, widths: tuple[int, ...] = SMALL_CNN_WIDTHS
) -> Backbone:
    """Four conv-BN-ReLU blocks (channels 32-64-128-256, each stride 2) and global pooling.

    At 112 px the last feature map is 7x7; out_dim is 256. ``pool`` is ``"avg"`` or ``"max"``
    (max pooling keeps a small object's response from being averaged away by the background).
    ``coordinates`` puts :class:`CoordinateChannels` before the first block. There are no
    pretrained weights.
    """
    if pretrained:
        raise ConfigError("the smallcnn backbones have no pretrained weights; set model.pretrained to false")
    position = [CoordinateChannels()] if coordinates else []
    blocks = small_cnn_blocks(widths, in_channels=5 if coordinates else 3)
    pooling = nn.AdaptiveAvgPool2d(1) if pool == "avg" else nn.AdaptiveMaxPool2d(1)
    trunk = nn.Sequential(*position, *blocks, pooling, nn.Flatten())
    return Backbone(trunk, widths[-1])


BACKBONES: dict[str, Callable[[bool], Backbone]] = {
    "resnet18": partial(_resnet, torchvision.models.resnet18, torchvision.models.ResNet18_Weights.IMAGENET1K_V1),
    "resnet34": partial(_resnet, torchvision.models.resnet34, torchvision.models.ResNet34_Weights.IMAGENET1K_V1),
    "resnet50": partial(_resnet, torchvision.models.resnet50, torchvision.models.ResNet50_Weights.IMAGENET1K_V2),
    "smallcnn": _small_cnn,
    "smallcnn_max": partial(_small_cnn, pool="max"),
    "smallcnn_max_coords": partial(_small_cnn, pool="max", coordinates=True),
}
"""Backbone name -> builder taking ``pretrained`` (ImageNet weights through torchvision's weights API)."""


def load_trunk_weights(backbone: Backbone, path: str | os.PathLike) -> None:
    """Load a local state_dict file (torchvision key names) into ``backbone.trunk``.

    Keys of a classifier (``fc.*``) in the file are ignored, since the backbone has none. Raises
    CheckpointError when the file is missing or unreadable, or when its keys or shapes do not match.
    """
    path = Path(path)
    state = load_torch_file(path, "backbone weights file")
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} is not a state_dict (a mapping from names to tensors)")
    state = {key: value for key, value in state.items() if not key.startswith("fc.")}
    expected = backbone.trunk.state_dict()
    missing = sorted(expected.keys() - state.keys())
    unexpected = sorted(state.keys() - expected.keys())
    reshaped = sorted(k for k in expected.keys() & state.keys() if expected[k].shape != state[k].shape)
    if missing or unexpected or reshaped:
        raise CheckpointError(
            f"{path} does not fit this backbone: {len(missing)} missing keys {missing[:5]}, "
            f"{len(unexpected)} unexpected keys {unexpected[:5]}, "
            f"{len(reshaped)} keys of another shape {reshaped[:5]}"
        )
    backbone.trunk.load_state_dict(state)


def build_backbone(name: str, pretrained: bool = False, weights_path: str | os.PathLike | None = None) -> Backbone:
    """Build a frame encoder by name.

    Args:
        name: one of :data:`BACKBONES`.
        pretrained: start from torchvision's ImageNet weights (downloaded once into the torch hub cache).
        weights_path: start from a local state_dict file instead (see :func:`load_trunk_weights`).

    Raises:
        ConfigError: unknown name, or both ``pretrained`` and ``weights_path`` given.
        CheckpointError: the weights cannot be fetched, read or do not fit.
    """
    if name not in BACKBONES:
        raise ConfigError(f"unknown backbone {name!r}; known backbones: {', '.join(sorted(BACKBONES))}")
    if pretrained and weights_path is not None:
        raise ConfigError("give either pretrained or weights_path for the backbone, not both")
    backbone = BACKBONES[name](pretrained)
    if weights_path is not None:
        load_trunk_weights(backbone, weights_path)
    return backbone
