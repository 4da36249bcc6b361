"""Checkpoints: atomic writes, ``weights_only`` reads, RNG capture and an architecture check.

A checkpoint is a plain dict that ``torch.load(weights_only=True)`` can read back: tensors,
numbers, strings, lists and dicts only. Keys written by the trainer:

- ``config``: the run's resolved config as a plain dict; ``num_train_classes``: int;
- ``model``: the recogniser's state_dict, the weights it validates and tests (with ``train.ema_decay``
  their moving average); ``episodes`` / ``step``: training progress;
- ``training_weights``: with ``train.ema_decay``, the optimiser's own weights (``last.pt`` only);
- ``optimizer``, ``scheduler``, ``scaler``: their state_dicts (``last.pt`` only);
- ``rng``: the RNG states of torch (CPU and CUDA), numpy, Python and every ``torch.Generator`` held
  by a module (e.g. the sampler's noise generator), see :func:`capture_rng`;
- ``best``: the best validation result so far; ``history``: validation results.
"""
from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch
from torch import nn

from stsampler.config import (
    ARCHITECTURE,
    KEYS,
    TRAINING,
    Config,
    config_from_dict,
    config_to_dict,
    flatten,
    is_read,
    migrate_stored,
)
from stsampler.engine.builder import build_model
from stsampler.errors import CheckpointError, ConfigError
from stsampler.io import atomic_torch_save, load_torch_file
from stsampler.models.recognizer import FewShotRecognizer
from stsampler.samplers.scanner import rename_earlier_keys

CHECKPOINT_DIR = "checkpoints"
BEST = "best.pt"
LAST = "last.pt"

def save_checkpoint(path: str | os.PathLike, state: dict) -> Path:
    """Write ``state`` atomically (a crash mid-write leaves the previous file intact)."""
    return atomic_torch_save(path, state)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint with ``weights_only=True`` onto the CPU (an earlier version's scanner keys
    renamed to the current ones).

    Raises:
        CheckpointError: the file is missing, corrupt or not a stsampler checkpoint.
    """
    path = Path(path)
    state = load_torch_file(path, "checkpoint")
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise CheckpointError(f"{path} is not a stsampler checkpoint (no 'model' and 'config' entries)")
    state["model"] = rename_earlier_keys(state["model"])
    return state


def resolve_checkpoint(path_or_run_dir: str | os.PathLike) -> Path:
    """A checkpoint file itself, or a run directory's ``checkpoints/best.pt``, else its ``last.pt``."""
    path = Path(path_or_run_dir)
    if path.is_dir():
        for name in (BEST, LAST):
            candidate = path / CHECKPOINT_DIR / name
            if candidate.is_file():
                return candidate
        raise CheckpointError(f"run directory {path} has no {CHECKPOINT_DIR}/{BEST} or {CHECKPOINT_DIR}/{LAST}")
    if not path.exists():
        raise CheckpointError(f"no checkpoint or run directory at {path}")
    return path


def architecture_diff(saved: dict, requested: dict) -> list[str]:
    """The keys of role :data:`~stsampler.config.ARCHITECTURE` whose values differ, except keys that
    neither config reads (e.g. a fixed sampler's learned-sampler settings).

    Args:
        saved, requested: configs as plain dicts (:func:`config_to_dict`).

    Returns:
        ``"key: saved -> requested"`` for each differing key, sorted.
    """
    return _differences(saved, requested, {ARCHITECTURE})


def recipe_diff(saved: dict, requested: dict) -> list[str]:
    """The keys whose values differ between two whole configs (plain dicts, :func:`config_to_dict`),
    except :data:`~stsampler.config.RUNTIME` keys, which cannot change a run's result, and keys that
    neither run reads (e.g. the amplifier's when both switch it off): ``"key: saved -> requested"``, sorted."""
    return _differences(saved, requested, {ARCHITECTURE, TRAINING})


def _differences(saved: dict, requested: dict, roles: set[str]) -> list[str]:
    """``"key: saved -> requested"`` for each key of one of ``roles`` (keys this version does not
    know count as any role) that at least one config reads and whose values differ, sorted by key."""
    old, new = flatten(saved), flatten(requested)

    def matters(path: str) -> bool:
        known = KEYS.get(path)
        role_matches = known is None or known.info is None or known.info.role in roles
        return role_matches and (is_read(path, saved) or is_read(path, requested))

    return [
        f"{path}: {old.get(path)!r} -> {new.get(path)!r}"
        for path in sorted(old.keys() | new.keys())
        if old.get(path) != new.get(path) and matters(path)
    ]


def check_state_dict(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Raise :class:`CheckpointError` naming the keys that are missing, unexpected or of another shape."""
    own = model.state_dict()
    missing = sorted(own.keys() - state.keys())
    unexpected = sorted(state.keys() - own.keys())
    reshaped = sorted(
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in own.keys() & state.keys()
        if own[k].shape != state[k].shape
    )
    if missing or unexpected or reshaped:
        raise CheckpointError(
            f"{source} holds another architecture: {len(missing)} missing keys {missing[:5]}, "
            f"{len(unexpected)} unexpected keys {unexpected[:5]}, {len(reshaped)} keys of another "
            f"shape (saved vs model) {reshaped[:5]}"
        )


def checkpoint_config(state: dict, source: str) -> Config:
    """The :class:`Config` stored in a checkpoint; keys added since it was written take their
    defaults, keys moved since are read at their old paths (:func:`migrate_stored`)."""
    try:
        return config_from_dict(migrate_stored(state["config"]), source=f"config stored in {source}")
    except ConfigError as exc:
        raise CheckpointError(f"{source} holds a config this version cannot read: {exc}") from exc


def load_model(
    path_or_run_dir: str | os.PathLike, device: str | torch.device = "cpu", config: Config | None = None
) -> tuple[FewShotRecognizer, Config]:
    """Rebuild the recogniser of a checkpoint (or a run directory's best / last) and load its weights.

    Args:
        path_or_run_dir: a ``.pt`` file or a run directory.
        device: where the model goes.
        config: the config the caller wants to run; its ``model`` / ``sampler`` sections must
            describe the checkpoint's architecture. None: the checkpoint's own config.

    Returns:
        (the model in eval mode on ``device``, the config used: ``config`` or the stored one).

    Raises:
        CheckpointError: unreadable file, another architecture than ``config``, or state_dict keys
            / shapes that do not match the rebuilt model.
    """
    path = resolve_checkpoint(path_or_run_dir)
    state = load_checkpoint(path)
    stored = checkpoint_config(state, str(path))
    cfg = config if config is not None else stored
    diffs = architecture_diff(config_to_dict(stored), config_to_dict(cfg))
    if diffs:
        raise CheckpointError(
            f"checkpoint {path} was trained with another architecture than the one requested: "
            + "; ".join(diffs)
        )
    build_cfg = config_from_dict(config_to_dict(cfg))
    build_cfg.model.pretrained = False  # the checkpoint holds every weight: download nothing
    build_cfg.model.weights_path = None
    build_cfg.sampler.scanner_pretrained = False
    model = build_model(build_cfg, int(state["num_train_classes"]))
    check_state_dict(model, state["model"], f"checkpoint {path}")
    model.load_state_dict(state["model"])
    return model.to(device).eval(), cfg


def module_generators(model: nn.Module) -> dict[str, torch.Generator]:
    """Every ``torch.Generator`` held as an attribute of a submodule, by ``module.attribute`` name."""
    found = {}
    for name, module in model.named_modules():
        for attr, value in vars(module).items():
            if isinstance(value, torch.Generator):
                found[f"{name}.{attr}" if name else attr] = value
    return found


def capture_rng(model: nn.Module | None = None) -> dict:
    """The state of every random number generator a training step may draw from, as tensors."""
    np_state = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": {"version": py_version, "state": torch.tensor(py_state, dtype=torch.int64), "gauss": py_gauss},
        "generators": {},
    }
    if model is not None:
        state["generators"] = {name: gen.get_state() for name, gen in module_generators(model).items()}
    return state


def restore_rng(state: dict, model: nn.Module | None = None) -> None:
    """Put back the generator states saved by :func:`capture_rng`."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    np_state = state["numpy"]
    np.random.set_state(
        ("MT19937", np_state["keys"].numpy().astype(np.uint32), np_state["pos"], np_state["has_gauss"],
         np_state["cached_gaussian"])
    )
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    if model is not None:
        generators = module_generators(model)
        for name, gen_state in state["generators"].items():
            if name in generators:
                generators[name].set_state(gen_state)
