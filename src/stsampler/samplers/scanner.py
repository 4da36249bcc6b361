"""The scanner: a light ShuffleNet-v2 that looks at every dense frame at low resolution.

It gives each frame a feature f_i (global-average-pooled conv5, 1024-d) and keeps the stage-2/3/4
feature maps for saliency. Input frames are normalised with the ImageNet mean and standard deviation,
which is exactly the normalisation torchvision's ImageNet ShuffleNet-v2 weights expect, so the
project's normalised clips feed the scanner unchanged.
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
from stsampler.pretrained import load_pretrained

ARCHS = ("shufflenet_v2_x0_5", "shufflenet_v2_x1_0")


class ScanOutput(NamedTuple):
    """What the scanner sees in N frames.

    Attributes:
        features: per-frame features ``[N, D]`` (D = 1024, global-average-pooled conv5).
        maps: stage-2, stage-3 and stage-4 feature maps, ``[N, C_k, h_k, w_k]``. Stage 2 is
            ``map_size x map_size``; stages 3 and 4 keep their own (coarser) resolution.
    """

    features: torch.Tensor
    maps: list[torch.Tensor]


class Scanner(nn.Module):
    """torchvision ShuffleNet-v2 without the max-pool after conv1, run at ``scan_size``.

    With ``scan_size=64`` and no max-pool, stage 2 is 16 x 16 (the saliency resolution); for other
    scan sizes the stage-2 map is resized to ``map_size``.

    Args:
        arch: ``"shufflenet_v2_x0_5"`` or ``"shufflenet_v2_x1_0"``.
        pretrained: load torchvision's ImageNet weights (downloads them once); False gives a random
            initialisation and downloads nothing.
        scan_size: side of the square each frame is resized to before scanning.
        freeze_bn: keep every batch-norm layer on its running statistics, also in training, so
            one video's features never depend on the other videos of the batch (a query on other
            queries); only the affine parameters learn.
        map_size: side of the stage-2 map handed on for saliency.
    """

    def __init__(self, arch: str, pretrained: bool, scan_size: int, freeze_bn: bool, map_size: int = 16) -> None:
        super().__init__()
        if arch not in ARCHS:
            raise ConfigError(f"scanner arch {arch!r} is not one of {ARCHS}")
        weights = models.get_model_weights(arch).IMAGENET1K_V1 if pretrained else None
        net = load_pretrained(partial(models.get_model, arch), weights) if pretrained else models.get_model(arch)
        self.conv1 = net.conv1
        self.stage2 = net.stage2
        self.stage3 = net.stage3
        self.stage4 = net.stage4
        self.conv5 = net.conv5
        self.scan_size = scan_size
        self.map_size = map_size
        self.freeze_bn = freeze_bn
        # torchvision records the channel counts of conv1, stages 2-4 and conv5.
        self.map_channels: list[int] = list(net._stage_out_channels[1:4])
        self.out_dim: int = net._stage_out_channels[-1]

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
        size = (self.scan_size, self.scan_size)
        if tuple(frames.shape[-2:]) != size:
            downscale = frames.shape[-2] > size[0] or frames.shape[-1] > size[1]
            frames = F.interpolate(
                frames, size=size, mode="bilinear", align_corners=False, antialias=downscale
            )
        x = self.conv1(frames)
        s2 = self.stage2(x)
        s3 = self.stage3(s2)
        s4 = self.stage4(s3)
        features = self.conv5(s4).mean(dim=(2, 3))
        if tuple(s2.shape[-2:]) != (self.map_size, self.map_size):
            s2 = F.interpolate(s2, size=(self.map_size, self.map_size), mode="bilinear", align_corners=False)
        return ScanOutput(features=features, maps=[s2, s3, s4])


def build_scanner(cfg: SamplerConfig) -> Scanner:
    """The scanner of ``cfg``; ``experimental.scanner_freeze_bn`` None freezes batch norm exactly when
    the scanner is pretrained (a scanner trained from scratch must learn its statistics, or its
    features collapse: ``docs/method.md`` section 9)."""
    freeze = cfg.experimental.scanner_freeze_bn
    return Scanner(
        cfg.scanner_arch, cfg.scanner_pretrained, cfg.scan_size, cfg.scanner_pretrained if freeze is None else freeze
    )
