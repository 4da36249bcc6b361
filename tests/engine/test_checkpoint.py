"""Checkpoints: round trip, unreadable files, architecture checks, RNG capture."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from stsampler.config import Config, apply_overrides, config_from_dict, config_to_dict
from stsampler.engine.builder import build_model
from stsampler.engine.checkpoint import (
    architecture_diff,
    capture_rng,
    checkpoint_config,
    load_checkpoint,
    load_model,
    recipe_diff,
    restore_rng,
    save_checkpoint,
)
from stsampler.errors import CheckpointError


def _save_model(cfg, path: Path, num_classes: int = 4) -> torch.nn.Module:
    torch.manual_seed(1)
    model = build_model(cfg, num_classes)
    save_checkpoint(
        path, {"config": config_to_dict(cfg), "num_train_classes": num_classes, "model": model.state_dict()}
    )
    return model


def test_load_model_round_trip_from_run_dir(tiny_config, tmp_path: Path) -> None:
    cfg = tiny_config()
    model = _save_model(cfg, tmp_path / "run" / "checkpoints" / "last.pt")
    loaded, loaded_cfg = load_model(tmp_path / "run")
    assert config_to_dict(loaded_cfg) == config_to_dict(cfg)
    assert not loaded.training
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_missing_and_corrupt_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="nope.pt"):
        load_checkpoint(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="bad.pt"):
        load_checkpoint(bad)
    torch.save({"weights": torch.zeros(1)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a stsampler checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    (tmp_path / "empty_run").mkdir()
    with pytest.raises(CheckpointError, match="best.pt"):
        load_model(tmp_path / "empty_run")


def test_other_architecture_is_refused_with_the_differing_keys(tiny_config, tmp_path: Path) -> None:
    path = tmp_path / "ckpt.pt"
    _save_model(tiny_config(), path)
    requested = tiny_config(model={"head": "otam"}, sampler={"num_frames": 3})
    with pytest.raises(CheckpointError) as info:
        load_model(path, config=requested)
    message = str(info.value)
    assert "model.head: 'protonet' -> 'otam'" in message and "sampler.num_frames: 4 -> 3" in message
    # Not an architecture change: training-only settings may differ.
    load_model(path, config=tiny_config(model={"aux_weight": 0.5}, sampler={"num_samples": 7}))


def test_learned_sampler_settings_do_not_matter_to_a_fixed_sampler(tiny_config, tmp_path: Path) -> None:
    path = tmp_path / "uniform.pt"
    _save_model(tiny_config(sampler={"kind": "uniform"}), path)
    state = load_checkpoint(path)
    del state["config"]["sampler"]["experimental"]["pe_scale"]  # e.g. a key added to the config after this run
    save_checkpoint(path, state)
    load_model(path, config=tiny_config(sampler={"kind": "uniform", "max_zoom": 2.0}))
    with pytest.raises(CheckpointError, match="sampler.kind: 'uniform' -> 'learned'"):
        load_model(path, config=tiny_config(sampler={"kind": "learned"}))


def test_recipe_diff_skips_only_the_keys_of_components_both_runs_switch_off(tiny_config) -> None:
    def diff(saved: dict, requested: dict) -> list[str]:
        configs = (config_to_dict(tiny_config(sampler={"kind": "learned", **keys})) for keys in (saved, requested))
        return recipe_diff(*configs)

    selector_only = {"spatial": False, "task_adaptive": False}
    assert diff(selector_only, {**selector_only, "max_zoom": 2.0, "experimental": {"task_sample_latent": False}}) == []
    assert diff(selector_only, {**selector_only, "sigma0": 0.25}) == ["sampler.sigma0: 0.05 -> 0.25"]
    assert diff({}, {"saliency_trains_scanner": False}) == ["sampler.saliency_trains_scanner: True -> False"]
    # Switching the component itself is a change, and so are its keys then.
    assert diff(selector_only, {"task_adaptive": False, "max_zoom": 2.0}) == [
        "sampler.max_zoom: 4.0 -> 2.0", "sampler.spatial: False -> True"
    ]
    assert diff({"kind": "uniform"}, {"kind": "uniform", "sigma0": 0.25, "num_frames": 3}) == [
        "sampler.num_frames: 4 -> 3"
    ]
    # The oracle's box is read by the oracle alone.
    assert diff({"kind": "uniform"}, {"kind": "uniform", "oracle_box": "clip"}) == []
    oracles = ({"kind": "oracle"}, {"kind": "oracle", "oracle_box": "clip"})
    configs = (tiny_config(sampler=keys, data={"metadata": "m.json"}) for keys in oracles)
    assert recipe_diff(*(config_to_dict(cfg) for cfg in configs)) == [
        "sampler.oracle_box: 'frame' -> 'clip'"
    ]


def test_state_dict_mismatch_names_the_keys(tiny_config, tmp_path: Path) -> None:
    cfg = tiny_config()
    path = tmp_path / "ckpt.pt"
    _save_model(cfg, path, num_classes=4)
    state = load_checkpoint(path)
    state["num_train_classes"] = 7  # the auxiliary classifier is rebuilt with another shape
    state["model"]["extra.weight"] = torch.zeros(1)
    save_checkpoint(path, state)
    with pytest.raises(CheckpointError, match=r"unexpected keys \['extra.weight'\].*aux_classifier.weight"):
        load_model(path)


def test_rng_capture_restores_every_generator(tiny_config, tmp_path: Path) -> None:
    model = build_model(tiny_config(sampler={"kind": "random"}), 4)
    state = capture_rng(model)
    save_checkpoint(tmp_path / "rng.pt", {"config": {}, "model": {}, "rng": state})
    first = (torch.rand(3), np.random.rand(3), random.random(),
             torch.rand(2, generator=model.sampler.generator))
    restore_rng(load_checkpoint(tmp_path / "rng.pt")["rng"], model)
    again = (torch.rand(3), np.random.rand(3), random.random(),
             torch.rand(2, generator=model.sampler.generator))
    assert torch.equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert first[2] == again[2] and torch.equal(first[3], again[3])


def test_a_checkpoint_from_before_a_new_config_key_loads_with_its_default(tiny_config, tmp_path: Path) -> None:
    """Checkpoints written before a key existed lack it; the key takes its default, not None."""
    cfg = tiny_config(sampler={"kind": "learned", "scanner_pretrained": False, "num_samples": 8})
    path = tmp_path / "old.pt"
    model = _save_model(cfg, path)
    state = load_checkpoint(path)
    del state["config"]["sampler"]["experimental"]["pe_scale"], state["config"]["sampler"]["saliency_trains_scanner"]
    save_checkpoint(path, state)
    loaded, loaded_cfg = load_model(path)
    assert config_to_dict(loaded_cfg) == config_to_dict(cfg)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())
    load_model(path, config=cfg)


def _differing(*overrides: str) -> tuple[dict, dict]:
    """The default config (learned sampler, every component on) and it with ``overrides``, as dicts."""
    base = config_to_dict(Config())
    return base, apply_overrides(base, overrides)


def test_each_role_is_checked_where_it_belongs() -> None:
    network = ("sampler.max_zoom=2.0", "sampler.experimental.pe_scale=1.0", "model.head=otam")
    learning = ("sampler.sigma0=0.25", "sampler.experimental.noise=gumbel", "train.lr=0.5", "data.num_frames=8")
    runtime = ("data.workers=0", "data.eval_cache_mb=0", "train.device=cpu", "train.log_every=1", "name=other")
    assert architecture_diff(*_differing(*network)) == [
        "model.head: 'protonet' -> 'otam'", "sampler.experimental.pe_scale: 0.1 -> 1.0", "sampler.max_zoom: 4.0 -> 2.0"
    ]
    assert recipe_diff(*_differing(*network)) == architecture_diff(*_differing(*network))
    assert architecture_diff(*_differing(*learning)) == []
    assert recipe_diff(*_differing(*learning)) == [
        "data.num_frames: 16 -> 8", "sampler.experimental.noise: 'normal' -> 'gumbel'", "sampler.sigma0: 0.05 -> 0.25",
        "train.lr: 0.001 -> 0.5",
    ]
    assert recipe_diff(*_differing(*runtime)) == []
    # A key this version does not know is never silently dropped.
    saved, requested = _differing("sampler.future_switch=true")
    expected = ["sampler.future_switch: None -> True"]
    assert architecture_diff(saved, requested) == recipe_diff(saved, requested) == expected


def test_a_checkpoint_from_before_the_experimental_section_loads(tiny_config) -> None:
    """Checkpoints written when the experiment-only switches were flat ``sampler.<key>`` keys."""
    values = config_to_dict(tiny_config(sampler={"kind": "learned"}))
    values["sampler"].update({**values["sampler"].pop("experimental"), "pe_scale": 1.0, "control_variate": False})
    cfg = checkpoint_config({"config": values}, "old.pt")
    assert cfg.sampler.experimental.pe_scale == 1.0 and cfg.sampler.experimental.control_variate is False
    assert cfg == config_from_dict(config_to_dict(cfg))


def test_the_model_input_size_is_built_and_reloaded(tiny_config, tmp_path: Path) -> None:
    cfg = tiny_config(model={"input_size": 16})
    model = _save_model(cfg, tmp_path / "run" / "checkpoints" / "last.pt")
    loaded, _ = load_model(tmp_path / "run")
    assert model.input_size == loaded.input_size == 16
    assert loaded.resize(torch.zeros(2, 3, 32, 32)).shape == (2, 3, 16, 16)
