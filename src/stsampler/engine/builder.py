"""Build recognisers and datasets from a :class:`~stsampler.config.Config`.

Samplers come from :func:`stsampler.samplers.registry.build_sampler` (re-exported here).
"""
from __future__ import annotations

import logging

from stsampler.config import Config
from stsampler.data.dataset import VideoDataset
from stsampler.data.events import OracleDataset
from stsampler.data.splits import BENCHMARKS, Split, load_benchmark_split
from stsampler.data.synthetic import load_metadata
from stsampler.data.transforms import ClipTransform
from stsampler.errors import DatasetError
from stsampler.models.backbones import build_backbone
from stsampler.models.heads import build_head
from stsampler.models.recognizer import FewShotRecognizer
from stsampler.samplers.learned import STSampler
from stsampler.samplers.registry import build_sampler

__all__ = ["build_dataset", "build_model", "build_sampler", "resolve_flip", "resolve_split"]

log = logging.getLogger(__name__)


def build_model(cfg: Config, num_train_classes: int) -> FewShotRecognizer:
    """Sampler + backbone + head + auxiliary classifier over ``num_train_classes`` classes.

    A ``model.weights_path`` takes precedence over ``model.pretrained``. With
    ``sampler.scanner_shares_backbone`` the learned sampler scans with the backbone's blocks.
    """
    sampler = build_sampler(cfg.sampler, seed=cfg.train.seed)
    weights_path = cfg.model.weights_path
    backbone = build_backbone(cfg.model.backbone, cfg.model.pretrained and weights_path is None, weights_path)
    if isinstance(sampler, STSampler) and cfg.sampler.scanner_shares_backbone:
        # The scanner's own blocks were drawn and are dropped: every later draw is the same with or without sharing.
        sampler.scanner.share_backbone(backbone)
    concat = cfg.model.concat_scan_feature and sampler.feature_dim > 0
    dim = backbone.out_dim + (sampler.feature_dim if concat else 0)
    head = build_head(cfg.model.head, dim, cfg.sampler.num_frames, **cfg.model.head_args)
    return FewShotRecognizer(
        sampler, backbone, head, num_train_classes, cfg.model.aux_weight, concat, cfg.model.input_size,
        scan_aux_weight=cfg.sampler.scan_aux_weight if cfg.sampler.kind == "learned" else 0.0,
    )


def resolve_split(cfg: Config, split: str) -> Split:
    """Load a split's list and find its videos under ``data.data_root``.

    Raises:
        DatasetError: the list is missing, or more than ``data.max_bad_fraction`` of its videos are
            absent from the data root. A smaller loss (as with Kinetics, whose clips vanish from
            YouTube) is logged as a warning and the split goes on without those videos.
    """
    source = cfg.data.benchmark or cfg.data.split_dir
    result = load_benchmark_split(source, split, cfg.data.data_root, cfg.data.splits_root)
    listed = len(result.items) + len(result.missing)
    if listed == 0:
        raise DatasetError(f"the {split} split of {source!r} lists no videos")
    fraction = len(result.missing) / listed
    if fraction > cfg.data.max_bad_fraction:
        raise DatasetError(
            f"{len(result.missing)} of the {listed} videos of the {split} split of {source!r} are "
            f"missing under data root {cfg.data.data_root!r} ({100 * fraction:.1f}% > "
            f"data.max_bad_fraction={cfg.data.max_bad_fraction}), e.g. {result.missing[:3]}; "
            f"run `stsampler splits check` to see what is missing, or set data.data_root"
        )
    if result.missing:
        log.warning(
            "%d of the %d videos of the %s split of %r are missing under %s; going on without them",
            len(result.missing), listed, split, source, cfg.data.data_root,
        )
    return result


def resolve_flip(cfg: Config) -> bool:
    """``data.flip``, or the benchmark registry's value when it is None (True for a split folder)."""
    if cfg.data.flip is not None:
        return cfg.data.flip
    spec = BENCHMARKS.get(cfg.data.benchmark) if cfg.data.benchmark else None
    return spec.flip if spec is not None else True


def build_dataset(cfg: Config, split: str, train: bool, split_data: Split | None = None) -> VideoDataset:
    """The decoded-clip dataset of one split (training augmentation when ``train``).

    ``split_data`` reuses an already resolved split (see :func:`resolve_split`). The dataset names
    the split and its list file in its messages, and judges ``data.max_bad_fraction`` over all the
    listed videos, the missing ones included.
    """
    resolved = split_data if split_data is not None else resolve_split(cfg, split)
    transform = ClipTransform(
        crop_size=cfg.data.crop_size, resize_short=cfg.data.resize_short, train=train, flip=resolve_flip(cfg)
    )
    cache_bytes = (cfg.data.train_cache_mb if train else cfg.data.eval_cache_mb) * 2**20
    if cfg.sampler.kind == "oracle":
        return OracleDataset(
            resolved.items, cfg.sampler.num_frames, transform, load_metadata(cfg.data.metadata), train=train,
            seed=cfg.train.seed, max_bad_fraction=cfg.data.max_bad_fraction, cache_bytes=cache_bytes,
            box=cfg.sampler.oracle_box,
        )
    return VideoDataset(
        resolved.items,
        num_frames=cfg.data.num_frames,
        transform=transform,
        train=train,
        seed=cfg.train.seed,
        decode_size=cfg.data.resize_short,
        max_bad_fraction=cfg.data.max_bad_fraction,
        cache_bytes=cache_bytes,
        split=resolved.description,
        missing=resolved.missing,
    )
