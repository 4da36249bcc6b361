"""Run configuration: nested dataclasses read from YAML with strict key and type checks.

A config file is a YAML mapping whose sections mirror :class:`Config`. The recipes shipped with the
package (``stsampler/configs/``, listed by :func:`list_recipes` and ``stsampler configs``) are
addressed by name from any directory, ``ucf101/protonet_sampler``; a path to a YAML file works too. A file may start from
another with ``base: relative/path.yaml`` (or a list of them, applied in order): the bases are read
first and the file's own keys are deep-merged over them. ``key.sub=value`` overrides are applied
last, each value parsed as YAML (``train.lr=0.01``, ``sampler.kind=uniform``, ``data.flip=null``).

Every key is checked against the dataclasses: an unknown key raises :class:`ConfigError` naming the
key path and the closest known key; a value of the wrong type raises :class:`ConfigError` naming the
key, the expected type and the value. All of this happens before anything long starts.

Units: every count of training progress (``episodes``, ``val_every``, ``ckpt_every``, ``warmup``,
``step_every``, ``sigma_every``) is in episodes; ``log_every`` is in optimiser steps.
"""
from __future__ import annotations

import dataclasses
import difflib
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence, Union, get_args, get_origin, get_type_hints

import yaml

from stsampler.errors import ConfigError
from stsampler.io import atomic_write_text


@dataclass
class DataConfig:
    """Where the videos are and how clips are decoded.

    ``benchmark`` names a registered benchmark (its split lists under ``splits_root``, default the
    packaged ones); ``split_dir`` is a folder of ``{train,val,test}list03.txt`` instead. Exactly one
    must be set. ``flip`` None takes the benchmark's registry value (no flip on SSv2), True otherwise.
    ``metadata`` is the ``metadata.json`` of a synthetic dataset, needed by the ``oracle`` sampler.
    ``eval_cache_mb`` keeps decoded evaluation clips in memory, up to this many MiB per loading
    process (0 turns it off): fixed test episodes draw each test video many times.
    """

    benchmark: str | None = None
    split_dir: str | None = None
    splits_root: str | None = None
    data_root: str = "data"
    num_frames: int = 16
    crop_size: int = 224
    resize_short: int = 256
    flip: bool | None = None
    workers: int = 4
    max_bad_fraction: float = 0.05
    metadata: str | None = None
    eval_cache_mb: int = 1024


@dataclass
class SamplerExperiments:
    """Experiment-only sampler switches (``sampler.experimental.<key>``); no recipe sets them."""

    soft_saliency: bool = True
    task_sample_latent: bool = True
    task_residual: bool = True
    control_variate: bool = True
    scanner_freeze_bn: bool | None = None
    noise: Literal["normal", "gumbel"] = "normal"
    pe_scale: float = 0.1


@dataclass
class SamplerConfig:
    """The frame sampler: a baseline or the learned spatial-temporal sampler (method.md 2-5).

    ``num_frames`` is T, the frames handed to the recogniser. The sigma schedule of the perturbed
    top-k is ``max(sigma_min, sigma0 * sigma_decay ** (episodes // sigma_every))``; the defaults are
    the paper's; the synthetic ablation starts at 0.25 (see ``RECIPE`` in
    ``benchmarks/synthetic_ablation.py`` for why). ``oracle`` is the upper bound on synthetic actions: the event's frames cropped to its
    box (``data.metadata``).
    ``scanner_freeze_bn`` None freezes the scanner's batch norm exactly when it is pretrained.
    ``pe_scale`` scales the evaluator's position encoding (1.0 is the paper's formula; see
    :class:`stsampler.samplers.selector.TemporalSelector` for why the default is 0.1).
    ``selector_warmup`` is the number of training episodes, at the start, in which the temporal
    selector is bypassed for one random frame per segment (for recognisers trained from scratch; see
    :class:`stsampler.samplers.learned.STSampler`). ``task_residual`` makes the task-adaptive
    learner generate a bounded gate on shared weights (False is the paper's form; see
    :mod:`stsampler.samplers.task_learner` for why the default is True). ``task_sample_latent``
    samples the task latent in training (the paper); False uses its mean in training too.
    ``soft_saliency`` selects the training-time saliency with the soft indicator (Y S, the paper);
    False takes the saliency of the hard top-T frames (see :class:`stsampler.samplers.learned.STSampler`).
    ``saliency_trains_scanner`` False stops the saliency's gradient at the scanner's maps.
    """

    kind: Literal["uniform", "random", "motion", "learned", "oracle"] = "learned"
    num_frames: int = 8
    temporal: bool = True
    spatial: bool = True
    task_adaptive: bool = True
    saliency: Literal["paper", "code"] = "paper"
    scanner_arch: str = "shufflenet_v2_x0_5"
    scanner_pretrained: bool = True
    scan_size: int = 64
    max_zoom: float = 4.0
    num_samples: int = 500
    sigma0: float = 0.05
    sigma_decay: float = 0.8
    sigma_every: int = 1000
    sigma_min: float = 0.01
    saliency_trains_scanner: bool = True
    selector_warmup: int = 0
    experimental: SamplerExperiments = field(default_factory=SamplerExperiments)


@dataclass
class ModelConfig:
    """Backbone, few-shot head and auxiliary loss of the recogniser."""

    backbone: str = "resnet50"
    pretrained: bool = True
    weights_path: str | None = None
    head: str = "protonet"
    head_args: dict[str, Any] = field(default_factory=dict)
    aux_weight: float = 0.1
    concat_scan_feature: bool = True


@dataclass
class TrainConfig:
    """Episodic training.

    One optimiser step consumes ``tasks_per_batch`` episodes in total over all ranks. ``amp``:
    ``auto`` is bf16 autocast on CUDA (fp16 with a gradient scaler where bf16 is unsupported); on
    CPU it is bf16 for ResNet backbones, where it is faster, and fp32 for the small CNN, where bf16
    is slower. ``bf16``, ``fp16`` (CUDA only) and ``none`` force a choice. ``device`` ``auto`` is
    CUDA when available (``cuda:LOCAL_RANK`` under torchrun), else CPU. ``channels_last`` converts
    the whole model on CUDA only: on CPU it makes ShuffleNet's depthwise convolutions ~20x slower
    (the backbone keeps its own channels_last either way).
    """

    way: int = 5
    shot: int = 1
    query: int = 5
    episodes: int = 10000
    tasks_per_batch: int = 16
    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: Literal["cosine", "step", "constant"] = "constant"
    warmup: int = 0
    step_every: int = 4000
    step_gamma: float = 0.1
    clip_grad: float | None = None
    amp: Literal["auto", "bf16", "fp16", "none"] = "auto"
    channels_last: bool = True
    device: str = "auto"
    val_every: int = 1000
    val_episodes: int = 500
    ckpt_every: int = 1000
    seed: int = 0
    log_every: int = 10


@dataclass
class EvalConfig:
    """Fixed-episode evaluation. ``way``/``shot`` None mean the training values."""

    split: Literal["train", "val", "test"] = "test"
    way: int | None = None
    shot: int | None = None
    query: int = 1
    episodes: int = 10000
    seed: int = 0
    episodes_file: str | None = None


@dataclass
class Config:
    """A whole run: data, sampler, recogniser, training and evaluation."""

    name: str = "run"
    data: DataConfig = field(default_factory=DataConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


_BASE_KEY = "base"

#: The folder of the recipes shipped with the package.
RECIPES_DIR = Path(__file__).resolve().parent / "configs"


def list_recipes() -> dict[str, str]:
    """Name -> first comment line of every shipped recipe (fragments, ``_*.yaml``, are not listed)."""
    recipes = {}
    for path in sorted(RECIPES_DIR.rglob("*.yaml")):
        if path.name.startswith("_"):
            continue
        name = path.relative_to(RECIPES_DIR).with_suffix("").as_posix()
        first = path.read_text(encoding="utf-8").splitlines()[:1]
        recipes[name] = first[0].lstrip("# ").strip() if first and first[0].startswith("#") else ""
    return recipes


def resolve_recipe(path_or_name: str | Path) -> Path:
    """A YAML file's path as given, or the shipped recipe of that name (``ucf101/protonet_sampler``).

    Raises:
        ConfigError: neither a file nor a shipped recipe, naming the closest recipe names.
    """
    path = Path(path_or_name)
    if path.is_file():
        return path
    name = path.as_posix().removesuffix(".yaml")
    shipped = RECIPES_DIR / f"{name}.yaml"
    if not name.startswith("_") and shipped.is_file():
        return shipped
    close = difflib.get_close_matches(name, list(list_recipes()), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else "; `stsampler configs` lists the shipped recipes"
    raise ConfigError(f"config file not found: {path_or_name}, and no shipped recipe has that name{hint}")


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _type_name(a) for a in get_args(tp))
    if origin is not None:
        return getattr(origin, "__name__", str(origin))
    return getattr(tp, "__name__", str(tp))


def _wrong_type(key: str, tp: Any, value: Any) -> ConfigError:
    return ConfigError(
        f"config key '{key}': expected {_type_name(tp)}, got {value!r} ({type(value).__name__})"
    )


def _convert(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and return it (dataclasses built from dicts)."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise _wrong_type(key, tp, value)
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(value, arg, key)
            except ConfigError:
                continue
        raise _wrong_type(key, tp, value)
    if origin is Literal:
        if isinstance(value, str) and value in get_args(tp):
            return value
        raise _wrong_type(key, tp, value)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise _wrong_type(key, tp, value)
        return _build(tp, value, key)
    if origin is dict or tp is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise _wrong_type(key, tp, value)
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _wrong_type(key, tp, value)
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _wrong_type(key, tp, value)
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise _wrong_type(key, tp, value)
    if tp is str:
        if isinstance(value, str):
            return value
        raise _wrong_type(key, tp, value)
    raise TypeError(f"unsupported annotation {tp!r} for config key {key}")


def _unknown_key(prefix: str, key: Any, known: Sequence[str]) -> ConfigError:
    path = f"{prefix}.{key}" if prefix else str(key)
    close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.5)
    hint = f"; did you mean '{prefix + '.' if prefix else ''}{close[0]}'?" if close else ""
    where = f"section '{prefix}'" if prefix else "the top level"
    return ConfigError(
        f"unknown config key '{path}'{hint} (known keys in {where}: {', '.join(known)})"
    )


def _build(cls: type, values: dict, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping, checking every key and value."""
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in values.items():
        if key not in hints:
            raise _unknown_key(prefix, key, names)
        kwargs[key] = _convert(value, hints[key], f"{prefix}.{key}" if prefix else key)
    return cls(**kwargs)


def _validate(cfg: Config) -> None:
    """Cross-field checks that types alone cannot express."""
    if (cfg.data.benchmark is None) == (cfg.data.split_dir is None):
        raise ConfigError(
            "set exactly one of 'data.benchmark' (a registered benchmark name) and 'data.split_dir' "
            f"(a folder of split lists); got benchmark={cfg.data.benchmark!r}, "
            f"split_dir={cfg.data.split_dir!r}"
        )
    positive = {
        "data.num_frames": cfg.data.num_frames, "data.crop_size": cfg.data.crop_size,
        "sampler.num_frames": cfg.sampler.num_frames, "train.way": cfg.train.way,
        "train.shot": cfg.train.shot, "train.query": cfg.train.query,
        "train.episodes": cfg.train.episodes, "train.tasks_per_batch": cfg.train.tasks_per_batch,
        "train.val_every": cfg.train.val_every, "train.ckpt_every": cfg.train.ckpt_every,
        "train.log_every": cfg.train.log_every, "train.step_every": cfg.train.step_every,
        "sampler.sigma_every": cfg.sampler.sigma_every, "eval.query": cfg.eval.query,
        "eval.episodes": cfg.eval.episodes,
    }
    for key, value in positive.items():
        if value < 1:
            raise ConfigError(f"config key '{key}' must be >= 1, got {value}")
    if cfg.sampler.num_frames > cfg.data.num_frames:
        raise ConfigError(
            f"sampler.num_frames (T={cfg.sampler.num_frames}) cannot exceed data.num_frames "
            f"(M={cfg.data.num_frames}): the sampler picks T of the M dense frames"
        )
    if cfg.data.resize_short < cfg.data.crop_size:
        raise ConfigError(
            f"data.resize_short ({cfg.data.resize_short}) must be >= data.crop_size "
            f"({cfg.data.crop_size})"
        )
    if cfg.sampler.kind == "oracle" and cfg.data.metadata is None:
        raise ConfigError(
            "sampler.kind 'oracle' needs 'data.metadata': the metadata.json of a synthetic dataset"
        )
    if not 0 <= cfg.sampler.selector_warmup < cfg.train.episodes:
        raise ConfigError(
            f"config key 'sampler.selector_warmup' must be in [0, train.episodes = {cfg.train.episodes}) "
            f"so that the selector trains at all, got {cfg.sampler.selector_warmup}"
        )
    if cfg.data.eval_cache_mb < 0:
        raise ConfigError(f"config key 'data.eval_cache_mb' must be >= 0 (0 turns the cache off), got {cfg.data.eval_cache_mb}")
    if cfg.train.way < 2:
        raise ConfigError(f"config key 'train.way' must be >= 2, got {cfg.train.way}")
    if not 0.0 <= cfg.data.max_bad_fraction < 1.0:
        raise ConfigError(
            f"config key 'data.max_bad_fraction' must be in [0, 1), got {cfg.data.max_bad_fraction}"
        )


def config_from_dict(values: dict, source: str = "config") -> Config:
    """Build and validate a :class:`Config` from a plain (nested) mapping."""
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: expected a mapping of config sections, got {type(values).__name__}")
    cfg = _build(Config, values)
    _validate(cfg)
    return cfg


def config_to_dict(cfg: Config) -> dict:
    """The config as plain nested dicts (YAML-, JSON- and ``torch.load(weights_only)``-safe)."""
    return dataclasses.asdict(cfg)


def _deep_merge(base: dict, over: dict) -> dict:
    """``over`` merged into a copy of ``base``: mappings merge recursively, anything else replaces."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_yaml(path: Path, chain: tuple[Path, ...] = ()) -> dict:
    """Read one config file with its ``base:`` files resolved (relative to the file's folder)."""
    path = path.resolve()
    if path in chain:
        cycle = " -> ".join(str(p) for p in (*chain, path))
        raise ConfigError(f"config 'base:' files form a cycle: {cycle}")
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path}: expected a mapping at the top level")
    bases = values.pop(_BASE_KEY, None)
    if bases is None:
        return values
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ConfigError(f"config file {path}: 'base' must be a path or a list of paths")
    merged: dict = {}
    for base in bases:
        merged = _deep_merge(merged, _read_yaml(path.parent / base, (*chain, path)))
    return _deep_merge(merged, values)


def apply_overrides(values: dict, overrides: Sequence[str]) -> dict:
    """Apply ``key.sub=value`` overrides (values parsed as YAML) to a raw config mapping."""
    result = dict(values)
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"override {item!r} is not of the form key.sub=value (e.g. train.lr=0.01)")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item!r}: the value is not valid YAML: {exc}") from exc
        *parents, leaf = key.split(".")
        nested: dict = {}
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
        result = _deep_merge(result, nested)
    return result


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> Config:
    """Read a YAML config or shipped recipe (:func:`resolve_recipe`) with its ``base:`` chain, apply
    overrides, check every key and type."""
    values = _read_yaml(resolve_recipe(path))
    values = apply_overrides(values, overrides)
    return config_from_dict(values, source=str(path))


def save_config(cfg: Config, path: str | Path) -> Path:
    """Write the resolved config as YAML, atomically."""
    text = yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=False)
    return atomic_write_text(path, text)
