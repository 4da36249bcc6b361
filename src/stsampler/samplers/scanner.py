"""The scanner: a light CNN that looks at every dense frame at low resolution.

It gives each frame a feature f_i and keeps three stage feature maps for saliency. Two families:

* ShuffleNet-v2 (the paper's): f_i is the global-average-pooled conv5, 1024-d. Input frames are
  normalised with the ImageNet mean and standard deviation, which is exactly the normalisation
  torchvision's ImageNet ShuffleNet-v2 weights expect, so the project's normalised clips feed the
  scanner unchanged.
* ``smallcnn`` (a departure for the CPU recipes trained from scratch, ``docs/method.md`` section 9):
  the four conv-BN-ReLU blocks of the ``smallcnn`` backbone; f_i is the global max of the last
  block, 256-d, so a small object's response is not averaged away.
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torchvision import models

from stsampler.config import SamplerConfig
from stsampler.errors import ConfigError
from stsampler.models.backbones import SMALL_CNN_WIDTHS, Backbone, CoordinateChannels, small_cnn_blocks
from stsampler.ops.resize import resize_square
from stsampler.pretrained import load_pretrained

SHUFFLENETS = ("shufflenet_v2_x0_5", "shufflenet_v2_x1_0")
ARCHS = (*SHUFFLENETS, "smallcnn")
#: Module names of the ShuffleNet scanner's parameters before the stem/stages/head layout, in
#: checkpoints written by earlier versions: read at their new names (:func:`rename_earlier_keys`).
_OLD_NAMES = {
    "conv1.": "stem.", "stage2.": "stages.0.", "stage3.": "stages.1.", "stage4.": "stages.2.", "conv5.": "head."
}


class ScanOutput(NamedTuple):
    """What the scanner sees in N frames.

    Attributes:
        features: per-frame features ``[N, D]`` (ShuffleNet: D = 1024, global-average-pooled conv5;
            smallcnn: D = 256, global max of the last block).
        maps: three stage feature maps, ``[N, C_k, h_k, w_k]`` (ShuffleNet: stages 2-4; smallcnn:
            blocks 2-4). The first is ``map_size x map_size``; the others keep their own (coarser)
            resolution.
    """

    features: torch.Tensor
    maps: list[torch.Tensor]


class Scanner(nn.Module):
    """A stem, three stages whose maps feed the saliency, and a pooled feature, run at ``scan_size``.

    ShuffleNet-v2 (torchvision's) runs without the max-pool after conv1; ``smallcnn`` is the
    ``smallcnn`` backbone's four stride-2 blocks (block 1 the stem). Either way, at
    ``scan_size=64`` the first map is 16 x 16 (the saliency resolution); for other scan sizes it is
    resized to ``map_size``.

    Args:
        arch: one of :data:`ARCHS`.
        pretrained: load torchvision's ImageNet weights (ShuffleNet only; downloads them once);
            False gives a random initialisation and downloads nothing.
        scan_size: side of the square each frame is resized to before scanning.
        freeze_bn: keep every batch-norm layer on its running statistics, also in training, so
            one video's features never depend on the other videos of the batch (a query on other
            queries); only the affine parameters learn.
        map_size: side of the first map handed on for saliency.
    """

    def __init__(self, arch: str, pretrained: bool, scan_size: int, freeze_bn: bool, map_size: int = 16) -> None:
        super().__init__()
        if arch not in ARCHS:
            raise ConfigError(f"scanner arch {arch!r} is not one of {ARCHS}")
        if arch in SHUFFLENETS:
            weights = models.get_model_weights(arch).IMAGENET1K_V1 if pretrained else None
            net = load_pretrained(partial(models.get_model, arch), weights) if pretrained else models.get_model(arch)
            self.stem: nn.Module = net.conv1
            self.stages = nn.ModuleList([net.stage2, net.stage3, net.stage4])
            self.head: nn.Module = net.conv5
            # torchvision records the channel counts of conv1, stages 2-4 and conv5.
            self.map_channels: list[int] = list(net._stage_out_channels[1:4])
            self.out_dim: int = net._stage_out_channels[-1]
            self.small_cnn = False
        else:
            if pretrained:
                raise ConfigError(
                    "the smallcnn scanner has no pretrained weights; set sampler.scanner_pretrained to false"
                )
            blocks = small_cnn_blocks(SMALL_CNN_WIDTHS)
            self.stem = blocks[0]
            self.stages = nn.ModuleList(blocks[1:])
            self.head = nn.Identity()
            self.map_channels = list(SMALL_CNN_WIDTHS[1:])
            self.out_dim = SMALL_CNN_WIDTHS[-1]
            self.small_cnn = True
        self.scan_size = scan_size
        #: Zero channels appended to the frames before the stem: the position inputs of a shared backbone.
        self.blind_channels = 0
        self.map_size = map_size
        self.freeze_bn = freeze_bn

    def share_backbone(self, backbone: Backbone) -> None:
        """Scan with the blocks of the recogniser's small-CNN ``backbone`` instead of this scanner's own.

        One set of weights then serves both: the recogniser's losses train the features the selector
        scores, and the selector's gradient reaches the backbone (``docs/method.md`` section 9). The
        batch-norm layers are shared too. A backbone with :class:`CoordinateChannels` is scanned
        without position: the scanner feeds zeros to the first block's position inputs, so selection
        and saliency see the frames only. Raises ConfigError for a ShuffleNet scanner or a backbone
        whose trunk does not start with the small CNN's blocks.
        """
        trunk = list(backbone.trunk) if isinstance(backbone.trunk, nn.Sequential) else []
        position = bool(trunk) and isinstance(trunk[0], CoordinateChannels)
        blocks = trunk[int(position):][: len(SMALL_CNN_WIDTHS)]
        own = [self.stem, *self.stages]
        same = self.small_cnn and len(blocks) == len(own) and all(
            [_without_inputs(p.shape) for p in a.parameters()] == [_without_inputs(p.shape) for p in b.parameters()]
            for a, b in zip(blocks, own, strict=True)
        )
        if not same:
            raise ConfigError(
                "sampler.scanner_shares_backbone needs a smallcnn scanner and a smallcnn backbone of the same widths"
            )
        self.stem = blocks[0]
        self.stages = nn.ModuleList(blocks[1:])
        self.blind_channels = blocks[0][0].in_channels - 3 if position else 0

    def train(self, mode: bool = True) -> Scanner:
        """Set training mode; batch-norm layers stay in evaluation mode when ``freeze_bn``."""
        super().train(mode)
        if self.freeze_bn:
            for module in self.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self

    def forward(self, frames: torch.Tensor) -> ScanOutput:
        """Scan frames.

        Args:
            frames: normalised frames ``[N, 3, H, W]`` (any memory format).

        Returns:
            :class:`ScanOutput` with features ``[N, out_dim]`` and the three stage maps.
        """
        frames = resize_square(frames, self.scan_size)
        if self.blind_channels:
            frames = F.pad(frames, (0, 0, 0, 0, 0, self.blind_channels))
        if self.small_cnn:  # dense convolutions: faster channels-last, on CPU too (ShuffleNet is not)
            frames = frames.contiguous(memory_format=torch.channels_last)
        maps = []
        x = self.stem(frames)
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        last = self.head(x)
        features = last.amax(dim=(2, 3)) if self.small_cnn else last.mean(dim=(2, 3))
        if tuple(maps[0].shape[-2:]) != (self.map_size, self.map_size):
            maps[0] = F.interpolate(maps[0], size=(self.map_size, self.map_size), mode="bilinear", align_corners=False)
        return ScanOutput(features=features, maps=maps)


def _without_inputs(shape: torch.Size) -> tuple[int, ...]:
    """A parameter's shape without its input-channel dimension (a convolution's second): the blocks
    of a backbone with position inputs then match the scanner's own."""
    return (shape[0], *shape[2:])


def rename_earlier_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state_dict with an earlier version's scanner keys (``...scanner.conv1.``, ``stage2``-``stage4``,
    ``conv5``) at their current names; every other key unchanged."""
    renamed = {}
    for key, value in state.items():
        head, found, rest = key.partition("scanner.")
        old = next((name for name in _OLD_NAMES if rest.startswith(name)), None) if found else None
        renamed[head + found + _OLD_NAMES[old] + rest[len(old):] if old else key] = value
    return renamed


def build_scanner(cfg: SamplerConfig) -> Scanner:
    """The scanner of ``cfg``; ``experimental.scanner_freeze_bn`` None freezes batch norm exactly when
    the scanner is pretrained (a scanner trained from scratch must learn its statistics, or its
    features collapse: ``docs/method.md`` section 9)."""
    freeze = cfg.experimental.scanner_freeze_bn
    return Scanner(
        cfg.scanner_arch, cfg.scanner_pretrained, cfg.scan_size, cfg.scanner_pretrained if freeze is None else freeze
    )
