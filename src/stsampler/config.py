"""Run configuration: nested dataclasses read from YAML with strict key and type checks.

A config file is a YAML mapping whose sections mirror :class:`Config`. The recipes shipped with the
package (``stsampler/configs/``, listed by :func:`list_recipes` and ``stsampler configs``) are
addressed by name from any directory, ``ucf101/protonet_sampler``; a path to a YAML file works too.
A file may start from another with ``base: relative/path.yaml`` (or a list of them, applied in
order): the bases are read first and the file's own keys are deep-merged over them.
``key.sub=value`` overrides are applied last, each value parsed as YAML (``train.lr=0.01``,
``sampler.kind=uniform``, ``data.flip=null``).

Every key is checked against the dataclasses: an unknown key raises :class:`ConfigError` naming the
key path and the closest known key; a value of the wrong type, or a number outside its range, raises
:class:`ConfigError` naming the key, the expected type or range and the value. All of this happens
before anything long starts.

Each key describes itself (:class:`KeyInfo`, in its field's metadata): its role for checkpoints and
run folders (architecture, training or runtime), for sampler keys the component that reads it, and
the range of a number. The checkpoint and run-folder checks
(:func:`stsampler.engine.checkpoint.architecture_diff`, ``recipe_diff``) and the range checks walk
it; keys of a sampler component that a run does not use are neither checked nor compared.

Units: every count of training progress (``episodes``, ``val_every``, ``ckpt_every``, ``warmup``,
``step_every``, ``sigma_every``) is in episodes; ``log_every`` is in optimiser steps.
"""
from __future__ import annotations

import dataclasses
import difflib
import re
import types
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple, Union, get_args, get_origin, get_type_hints

import yaml

from stsampler.errors import ConfigError
from stsampler.io import atomic_write_text

Role = Literal["architecture", "training", "runtime"]
#: Changes the weights' layout or what a forward pass computes: checked when a checkpoint is loaded
#: or resumed, and between runs that are compared.
ARCHITECTURE: Role = "architecture"
#: Changes what a run learns or measures, not the network: checked between runs only.
TRAINING: Role = "training"
#: Changes neither (loading processes, caches, device, logging, the run's label): never checked.
RUNTIME: Role = "runtime"
#: Sampler kinds with keys of their own: such a key is read only when ``sampler.kind`` is that kind.
KIND_COMPONENTS = ("learned", "oracle")
#: What reads a sampler key: a switch of the learned sampler (its keys are unread while it is off) or
#: one of :data:`KIND_COMPONENTS`. A key without a component is read by every sampler.
COMPONENTS = ("temporal", "spatial", "task_adaptive", *KIND_COMPONENTS)
#: Backbones built from the small CNN's blocks, which a ``smallcnn`` scanner can share.
SMALL_CNN_BACKBONES = ("smallcnn", "smallcnn_max", "smallcnn_max_coords")

_KEY_INFO = "stsampler"


@dataclass(frozen=True)
class Interval:
    """The values a number may take, written as in mathematics: ``[0, 1)``, ``(0, inf)``."""

    low: float
    high: float
    closed_low: bool
    closed_high: bool

    @classmethod
    def parse(cls, text: str) -> Interval:
        """Read ``[low, high]`` with a bracket or parenthesis at either end (``inf`` for no bound)."""
        match = re.fullmatch(r"([\[(])\s*([^,\s]+)\s*,\s*([^,\s]+)\s*([\])])", text.strip())
        if match is None:
            raise ValueError(f"not an interval: {text!r} (write e.g. '[0, 1)' or '(0, inf)')")
        return cls(float(match[2]), float(match[3]), match[1] == "[", match[4] == "]")

    def __contains__(self, value: float) -> bool:
        above = value >= self.low if self.closed_low else value > self.low
        below = value <= self.high if self.closed_high else value < self.high
        return above and below

    def __str__(self) -> str:
        return f"{'[' if self.closed_low else '('}{self.low:g}, {self.high:g}{']' if self.closed_high else ')'}"


@dataclass(frozen=True)
class KeyInfo:
    """What a config key means for checkpoints and run folders, and which values it may take.

    ``role``: :data:`ARCHITECTURE`, :data:`TRAINING` or :data:`RUNTIME`. ``reads``: for sampler keys,
    the component that reads the key (one of :data:`COMPONENTS`), None when every sampler does.
    ``within``: the interval a numeric value must lie in (None for keys that are not numbers).
    """

    role: Role
    reads: str | None = None
    within: Interval | None = None


def key_info(role: Role, *, reads: str | None = None, within: str | None = None) -> dict[str, KeyInfo]:
    """A field's ``metadata`` holding its :class:`KeyInfo` (``within`` as text, e.g. ``"[1, inf)"``)."""
    if reads is not None and reads not in COMPONENTS:
        raise ValueError(f"unknown sampler component {reads!r} (known: {', '.join(COMPONENTS)})")
    return {_KEY_INFO: KeyInfo(role, reads, Interval.parse(within) if within is not None else None)}


def key(default: Any, role: Role, *, reads: str | None = None, within: str | None = None) -> Any:
    """A dataclass field with an immutable ``default`` and its :class:`KeyInfo` (:func:`key_info`)."""
    return field(default=default, metadata=key_info(role, reads=reads, within=within))


@dataclass
class DataConfig:
    """Where the videos are and how clips are decoded.

    ``benchmark`` names a registered benchmark (its split lists under ``splits_root``, default the
    packaged ones); ``split_dir`` is a folder of ``{train,val,test}list03.txt`` instead. Exactly one
    must be set. ``flip`` None takes the benchmark's registry value (no flip on SSv2), True otherwise.
    ``metadata`` is the ``metadata.json`` of a synthetic dataset, needed by the ``oracle`` sampler.
    ``eval_cache_mb`` keeps decoded evaluation clips in memory, up to this many MiB per loading
    process (0 turns it off): fixed test episodes draw each test video many times.
    ``train_cache_mb`` keeps every decoded frame of the training videos in memory while they fit in
    this many MiB per loading process (0 turns it off): for small datasets, which training would
    otherwise decode again in every episode. The clips are identical either way.
    """

    benchmark: str | None = key(None, TRAINING)
    split_dir: str | None = key(None, TRAINING)
    splits_root: str | None = key(None, TRAINING)
    data_root: str = key("data", TRAINING)
    num_frames: int = key(16, TRAINING, within="[1, inf)")
    crop_size: int = key(224, TRAINING, within="[1, inf)")
    resize_short: int = key(256, TRAINING, within="[1, inf)")
    flip: bool | None = key(None, TRAINING)
    workers: int = key(4, RUNTIME, within="[0, inf)")
    max_bad_fraction: float = key(0.05, TRAINING, within="[0, 1)")
    metadata: str | None = key(None, TRAINING)
    eval_cache_mb: int = key(1024, RUNTIME, within="[0, inf)")
    train_cache_mb: int = key(0, RUNTIME, within="[0, inf)")


@dataclass
class SamplerExperiments:
    """Switches of the learned sampler kept for experiments (``sampler.experimental.<key>``); no recipe sets them.

    ``soft_saliency``: the training-time saliency is selected with the soft indicator (Y S, the
    paper); False takes the saliency of the hard top-T frames.
    ``task_sample_latent``: the task latent is sampled in training (the paper); False uses its mean.
    ``task_residual``: the task-adaptive learner generates a bounded gate on shared weights; False
    generates the weights themselves (the paper's form).
    ``control_variate``: the perturbed top-k's gradient subtracts the unperturbed selection's term
    (unbiased, lower variance).
    ``scanner_freeze_bn``: the scanner's batch norm keeps its statistics; None freezes it exactly
    when the scanner is pretrained.
    ``noise``: the perturbed top-k's noise distribution.
    ``pe_scale``: scale of the evaluator's position encoding (1.0 is the paper's formula; see
    :class:`stsampler.samplers.selector.TemporalSelector` for the default).
    ``clip_warp``: warp all T selected frames of a video by one map, the pixelwise max of their
    saliency maps, so the object's motion across the frames survives the warp; False (the paper)
    warps each frame by its own map.
    """

    soft_saliency: bool = key(True, TRAINING, reads="spatial")
    task_sample_latent: bool = key(True, TRAINING, reads="task_adaptive")
    task_residual: bool = key(True, ARCHITECTURE, reads="task_adaptive")
    control_variate: bool = key(True, TRAINING, reads="temporal")
    scanner_freeze_bn: bool | None = key(None, ARCHITECTURE, reads="learned")
    noise: Literal["normal", "gumbel"] = key("normal", TRAINING, reads="temporal")
    pe_scale: float = key(0.1, ARCHITECTURE, reads="temporal", within="[0, inf)")
    clip_warp: bool = key(False, ARCHITECTURE, reads="spatial")


@dataclass
class SamplerConfig:
    """The frame sampler: a baseline or the learned spatial-temporal sampler (method.md 2-5).

    ``num_frames`` is T, the frames handed to the recogniser. The defaults are the method's (method.md
    2-4). The sigma schedule of the perturbed top-k is
    ``max(sigma_min, sigma0 * sigma_decay ** (episodes // sigma_every))``; the synthetic recipes
    start at 0.25 (see ``configs/synthetic/_cpu.yaml`` for why). ``oracle`` is the upper bound on
    synthetic actions: the event's frames cropped to its object (``data.metadata``), each to its own
    box or all to one box (``oracle_box`` ``frame`` or ``clip``; see
    :class:`stsampler.data.events.OracleDataset` for what each keeps).
    ``selector_warmup`` is the number of training episodes, at the start, in which the temporal
    selector is bypassed for one random frame per segment (for recognisers trained from scratch; see
    :class:`stsampler.samplers.learned.STSampler`). ``saliency_trains_scanner`` False stops the
    saliency's gradient at the scanner's maps. ``evaluator_learns`` False keeps the selector's
    evaluator (and the task learner's w2 generator) at its initialisation: the selector's gradient
    then trains the scanner only. ``scanner_arch``: ``shufflenet_v2_x0_5`` or
    ``shufflenet_v2_x1_0`` (the paper's), or ``smallcnn`` (no pretrained weights; method.md 2.2).
    ``scanner_shares_backbone`` True makes a ``smallcnn`` scanner use the recogniser's ``smallcnn``
    backbone blocks (one set of weights; method.md section 9). ``scan_aux_weight`` above 0 adds a
    linear classifier over the training classes on the scan features of all M frames, max-pooled over
    time, whose cross-entropy joins the training loss with this weight: the scanner then learns every
    training class's event whichever frames the selector picks (method.md section 9); 0 (the paper)
    has no such classifier.
    Keys of a component that is switched off, and every key but ``kind`` and ``num_frames`` for the
    samplers without weights, are neither read nor checked.
    """

    kind: Literal["uniform", "random", "motion", "learned", "oracle"] = key("learned", ARCHITECTURE)
    num_frames: int = key(8, ARCHITECTURE, within="[1, inf)")
    temporal: bool = key(True, ARCHITECTURE, reads="learned")
    spatial: bool = key(True, ARCHITECTURE, reads="learned")
    task_adaptive: bool = key(True, ARCHITECTURE, reads="learned")
    saliency: Literal["paper", "code"] = key("paper", ARCHITECTURE, reads="spatial")
    scanner_arch: str = key("shufflenet_v2_x0_5", ARCHITECTURE, reads="learned")
    scanner_pretrained: bool = key(True, TRAINING, reads="learned")
    scanner_shares_backbone: bool = key(False, ARCHITECTURE, reads="learned")
    scan_size: int = key(64, ARCHITECTURE, reads="learned", within="[1, inf)")
    scan_aux_weight: float = key(0.0, ARCHITECTURE, reads="learned", within="[0, inf)")
    max_zoom: float = key(4.0, ARCHITECTURE, reads="spatial", within="[1, inf)")
    num_samples: int = key(500, TRAINING, reads="temporal", within="[1, inf)")
    sigma0: float = key(0.05, TRAINING, reads="temporal", within="(0, inf)")
    sigma_decay: float = key(0.8, TRAINING, reads="temporal", within="(0, 1]")
    sigma_every: int = key(1000, TRAINING, reads="temporal", within="[1, inf)")
    sigma_min: float = key(0.01, TRAINING, reads="temporal", within="[0, inf)")
    saliency_trains_scanner: bool = key(True, TRAINING, reads="spatial")
    selector_warmup: int = key(0, TRAINING, reads="temporal", within="[0, inf)")
    evaluator_learns: bool = key(True, TRAINING, reads="temporal")
    oracle_box: Literal["frame", "clip"] = key("frame", TRAINING, reads="oracle")
    experimental: SamplerExperiments = field(default_factory=SamplerExperiments)


@dataclass
class ModelConfig:
    """Backbone, few-shot head and auxiliary loss of the recogniser.

    ``input_size``: the side of the square frames the backbone embeds; the sampler's frames are
    resized to it (bilinear, antialiased when shrinking) when they differ. None embeds them at the
    decoded size (``data.crop_size``). Decoding larger than ``input_size`` gives the spatial
    amplifier a sharper source to magnify from, as the paper's amplifier samples its 224-px output
    from the full frames, while uniform frames reach the backbone at the same size
    (``docs/method.md`` section 4).
    """

    backbone: str = key("resnet50", ARCHITECTURE)
    input_size: int | None = key(None, ARCHITECTURE, within="[1, inf)")
    pretrained: bool = key(True, TRAINING)
    weights_path: str | None = key(None, TRAINING)
    head: str = key("protonet", ARCHITECTURE)
    head_args: dict[str, Any] = field(default_factory=dict, metadata=key_info(ARCHITECTURE))
    aux_weight: float = key(0.1, TRAINING, within="[0, inf)")
    concat_scan_feature: bool = key(True, ARCHITECTURE)


@dataclass
class TrainConfig:
    """Episodic training.

    One optimiser step consumes ``tasks_per_batch`` episodes in total over all ranks. ``amp``:
    ``auto`` is bf16 autocast on CUDA (fp16 with a gradient scaler where bf16 is unsupported); on
    CPU it is bf16 for ResNet backbones, where it is faster, and fp32 for the small CNN, where bf16
    is slower. ``bf16``, ``fp16`` (CUDA only) and ``none`` force a choice. ``device`` ``auto`` is
    CUDA when available (``cuda:LOCAL_RANK`` under torchrun), else CPU. ``channels_last`` converts
    the whole model on CUDA only: on CPU it makes ShuffleNet's depthwise convolutions ~20x slower
    (the backbone keeps its own channels_last either way). ``val_episodes`` 0 turns validation off.
    ``ema_decay``: None trains, validates and saves the optimiser's weights; a decay in ``[0, 1)``
    validates, saves and so tests an exponential moving average of them, updated after every step
    (:mod:`stsampler.engine.averaging`).
    """

    way: int = key(5, TRAINING, within="[2, inf)")
    shot: int = key(1, TRAINING, within="[1, inf)")
    query: int = key(5, TRAINING, within="[1, inf)")
    episodes: int = key(10000, TRAINING, within="[1, inf)")
    tasks_per_batch: int = key(16, TRAINING, within="[1, inf)")
    optimizer: Literal["sgd", "adamw"] = key("sgd", TRAINING)
    lr: float = key(1e-3, TRAINING, within="(0, inf)")
    momentum: float = key(0.9, TRAINING, within="[0, 1)")
    weight_decay: float = key(5e-4, TRAINING, within="[0, inf)")
    schedule: Literal["cosine", "step", "constant"] = key("constant", TRAINING)
    warmup: int = key(0, TRAINING, within="[0, inf)")
    step_every: int = key(4000, TRAINING, within="[1, inf)")
    step_gamma: float = key(0.1, TRAINING, within="(0, 1]")
    clip_grad: float | None = key(None, TRAINING, within="(0, inf)")
    ema_decay: float | None = key(None, TRAINING, within="[0, 1)")
    amp: Literal["auto", "bf16", "fp16", "none"] = key("auto", TRAINING)
    channels_last: bool = key(True, RUNTIME)
    device: str = key("auto", RUNTIME)
    val_every: int = key(1000, TRAINING, within="[1, inf)")
    val_episodes: int = key(500, TRAINING, within="[0, inf)")
    ckpt_every: int = key(1000, TRAINING, within="[1, inf)")
    seed: int = key(0, TRAINING, within="[0, inf)")
    log_every: int = key(10, RUNTIME, within="[1, inf)")


@dataclass
class EvalConfig:
    """Fixed-episode evaluation. ``way``/``shot`` None mean the training values."""

    split: Literal["train", "val", "test"] = key("test", TRAINING)
    way: int | None = key(None, TRAINING, within="[2, inf)")
    shot: int | None = key(None, TRAINING, within="[1, inf)")
    query: int = key(1, TRAINING, within="[1, inf)")
    episodes: int = key(10000, TRAINING, within="[1, inf)")
    seed: int = key(0, TRAINING, within="[0, inf)")
    episodes_file: str | None = key(None, TRAINING)


@dataclass
class Config:
    """A whole run: data, sampler, recogniser, training and evaluation."""

    name: str = key("run", RUNTIME)
    data: DataConfig = field(default_factory=DataConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


class ConfigKey(NamedTuple):
    """One leaf key of :class:`Config`: its dotted path, its annotation and its :class:`KeyInfo`."""

    path: str
    type: Any
    info: KeyInfo | None


def walk_keys(cls: type = Config, prefix: str = "") -> list[ConfigKey]:
    """Every leaf key of the dataclass ``cls``, sections walked into, in declaration order."""
    keys = []
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        path = f"{prefix}.{f.name}" if prefix else f.name
        if dataclasses.is_dataclass(hints[f.name]):
            keys += walk_keys(hints[f.name], path)
        else:
            keys.append(ConfigKey(path, hints[f.name], f.metadata.get(_KEY_INFO)))
    return keys


#: Every leaf key of :class:`Config` by dotted path.
KEYS: dict[str, ConfigKey] = {k.path: k for k in walk_keys()}

#: Keys that moved, old path -> new path: stored configs holding the old path are migrated
#: (:func:`migrate_stored`), a user's config holding it is refused with the new path.
MOVED_KEYS: dict[str, str] = {
    f"sampler.{f.name}": f"sampler.experimental.{f.name}" for f in dataclasses.fields(SamplerExperiments)
}


def flatten(values: dict, prefix: str = "") -> dict[str, Any]:
    """A config as plain nested dicts -> ``{dotted path: value}`` (a mapping-valued key such as
    ``model.head_args`` stays one value)."""
    flat: dict[str, Any] = {}
    for name, value in values.items():
        path = f"{prefix}.{name}" if prefix else name
        if isinstance(value, dict) and path not in KEYS:
            flat.update(flatten(value, path))
        else:
            flat[path] = value
    return flat


def sampler_reads(sampler: dict, component: str | None) -> bool:
    """Whether a run whose sampler section (plain dict) is ``sampler`` reads the keys of ``component``
    (:data:`COMPONENTS`; None: keys every sampler reads)."""
    if component is None:
        return True
    if component in KIND_COMPONENTS:
        return sampler.get("kind") == component
    return sampler.get("kind") == "learned" and bool(sampler.get(component, True))


def is_read(path: str, values: dict) -> bool:
    """Whether a run with the config ``values`` (plain nested dicts) reads the key at ``path``;
    keys this version does not know count as read."""
    known = KEYS.get(path)
    if known is None or known.info is None:
        return True
    return sampler_reads(values.get("sampler", {}), known.info.reads)


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
    for name, value in values.items():
        path = f"{prefix}.{name}" if prefix else str(name)
        if path in MOVED_KEYS:
            raise ConfigError(f"config key '{path}' is now '{MOVED_KEYS[path]}': write it there")
        if name not in hints:
            raise _unknown_key(prefix, name, names)
        kwargs[name] = _convert(value, hints[name], path)
    return cls(**kwargs)


def _check_ranges(values: dict) -> None:
    """Every numeric key the run reads lies in its interval (``values``: the config as plain dicts)."""
    flat = flatten(values)
    for path, known in KEYS.items():
        within = known.info.within if known.info is not None else None
        value = flat[path]
        if within is not None and value is not None and is_read(path, values) and value not in within:
            raise ConfigError(f"config key '{path}' must be in {within}, got {value!r}")


def _check_shared_scanner(cfg: Config) -> None:
    """A scanner that shares the recogniser's blocks needs the small CNN on both sides and batch norm that trains."""
    if cfg.sampler.scanner_arch != "smallcnn" or cfg.model.backbone not in SMALL_CNN_BACKBONES:
        raise ConfigError(
            "sampler.scanner_shares_backbone needs sampler.scanner_arch 'smallcnn' and model.backbone one of "
            f"{SMALL_CNN_BACKBONES} (the same blocks); got {cfg.sampler.scanner_arch!r} and "
            f"{cfg.model.backbone!r}: set it to false or use those two"
        )
    if cfg.sampler.experimental.scanner_freeze_bn:
        raise ConfigError(
            "sampler.experimental.scanner_freeze_bn cannot freeze the batch norm of a scanner that shares it with "
            "the recogniser (sampler.scanner_shares_backbone): set one of them to false"
        )


def _validate(cfg: Config) -> None:
    """Value ranges (:class:`KeyInfo`) and the cross-field checks that types alone cannot express;
    keys the run's sampler does not read are not checked."""
    values = config_to_dict(cfg)
    _check_ranges(values)
    if (cfg.data.benchmark is None) == (cfg.data.split_dir is None):
        raise ConfigError(
            "set exactly one of 'data.benchmark' (a registered benchmark name) and 'data.split_dir' "
            f"(a folder of split lists); got benchmark={cfg.data.benchmark!r}, "
            f"split_dir={cfg.data.split_dir!r}"
        )
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
    if is_read("sampler.scanner_shares_backbone", values) and cfg.sampler.scanner_shares_backbone:
        _check_shared_scanner(cfg)
    if is_read("sampler.selector_warmup", values) and cfg.sampler.selector_warmup >= cfg.train.episodes:
        raise ConfigError(
            f"config key 'sampler.selector_warmup' must be below train.episodes ({cfg.train.episodes}) "
            f"so that the selector trains at all, got {cfg.sampler.selector_warmup}"
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


def _set_path(tree: dict, path: str, value: Any) -> None:
    """Set the dotted ``path`` of the nested mapping ``tree`` to ``value``, creating sections on the way."""
    *parents, leaf = path.split(".")
    for part in parents:
        tree = tree.setdefault(part, {})
    tree[leaf] = value


def migrate_stored(values: dict) -> dict:
    """A stored config (plain nested dicts, e.g. a checkpoint's or a run folder's ``config.yaml``)
    with the keys of :data:`MOVED_KEYS` moved to their new paths; a key already at its new path wins."""
    if not isinstance(values, dict):
        return values
    migrated = flatten(values)
    for old, new in MOVED_KEYS.items():
        if old in migrated:
            value = migrated.pop(old)
            migrated.setdefault(new, value)
    nested: dict = {}
    for path, value in migrated.items():
        _set_path(nested, path, value)
    return nested


def _deep_merge(base: dict, over: dict) -> dict:
    """``over`` merged into a copy of ``base``: mappings merge recursively, anything else replaces."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error in one line: what is wrong and where (PyYAML's own text spans several lines)."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem:
        mark = exc.problem_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        return f"{exc.problem}{where}"
    return " ".join(str(exc).split())


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
        raise ConfigError(f"config file {path} is not valid YAML: {_yaml_problem(exc)}") from exc
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
            raise ConfigError(f"override {item!r}: the value is not valid YAML: {_yaml_problem(exc)}") from exc
        nested: dict = {}
        _set_path(nested, key, value)
        result = _deep_merge(result, nested)
    return result


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> Config:
    """Read a YAML config or shipped recipe (:func:`resolve_recipe`) with its ``base:`` chain, apply
    overrides, check every key and type."""
    values = _read_yaml(resolve_recipe(path))
    values = apply_overrides(values, overrides)
    return config_from_dict(values, source=str(path))


def load_saved_config(path: str | Path) -> Config:
    """Read the ``config.yaml`` a run folder holds (:func:`save_config`), also one written before a
    key moved (:func:`migrate_stored`)."""
    return config_from_dict(migrate_stored(_read_yaml(Path(path))), source=str(path))


def save_config(cfg: Config, path: str | Path) -> Path:
    """Write the resolved config as YAML, atomically."""
    text = yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=False)
    return atomic_write_text(path, text)
