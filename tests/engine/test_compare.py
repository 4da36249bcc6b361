"""Compared variants: saved test results reused only for the same checkpoint, episodes and metadata;
run folders of another configuration refused."""
from __future__ import annotations

from dataclasses import asdict

import pytest

from stsampler.config import save_config
from stsampler.demo import DemoConfig
from stsampler.engine.checkpoint import BEST, CHECKPOINT_DIR
from stsampler.engine.compare import (
    VariantResult, _inputs_key, _result_key, _saved_test_result, train_variant, variant_config,
)
from stsampler.errors import ConfigError
from stsampler.io import atomic_write_json


def result() -> VariantResult:
    return VariantResult("all", 51.0, 2.3, 43.1, 1.8, 8.7, "runs/all")


def key_of(run_dir, episodes, metadata):
    return _result_key(run_dir, _inputs_key(episodes, metadata))


def make_run(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / CHECKPOINT_DIR).mkdir(parents=True)
    (run_dir / CHECKPOINT_DIR / BEST).write_bytes(b"weights")
    episodes = tmp_path / "episodes.json"
    episodes.write_text("[1, 2, 3]")
    return run_dir, episodes


def test_a_saved_result_is_reused_for_the_same_inputs(tmp_path) -> None:
    run_dir, episodes = make_run(tmp_path)
    key = key_of(run_dir, episodes, {"videos": {}})
    atomic_write_json(run_dir / "saved.json", {"key": key, "result": asdict(result())})
    assert _saved_test_result(run_dir / "saved.json", key_of(run_dir, episodes, {"videos": {}})) == result()


def test_a_saved_result_is_stale_when_any_input_changes(tmp_path) -> None:
    run_dir, episodes = make_run(tmp_path)
    key = key_of(run_dir, episodes, {"videos": {}})
    atomic_write_json(run_dir / "saved.json", {"key": key, "result": asdict(result())})
    assert _saved_test_result(run_dir / "saved.json", key_of(run_dir, episodes, None)) is None
    episodes.write_text("[1, 2, 4]")
    assert _saved_test_result(run_dir / "saved.json", key_of(run_dir, episodes, {"videos": {}})) is None
    episodes.write_text("[1, 2, 3]")
    (run_dir / CHECKPOINT_DIR / BEST).write_bytes(b"retrained")
    assert _saved_test_result(run_dir / "saved.json", key_of(run_dir, episodes, {"videos": {}})) is None


def test_a_missing_or_corrupt_saved_result_is_ignored(tmp_path) -> None:
    run_dir, episodes = make_run(tmp_path)
    key = key_of(run_dir, episodes, None)
    assert _saved_test_result(run_dir / "absent.json", key) is None
    (run_dir / "broken.json").write_text('{"key": ')
    assert _saved_test_result(run_dir / "broken.json", key) is None
    (run_dir / "wrong.json").write_text('{"key": null, "result": {"name": "x"}}')
    assert _saved_test_result(run_dir / "wrong.json", None) is None


def test_a_run_folder_of_another_configuration_is_refused(tmp_path) -> None:
    base = DemoConfig.quick().base_config(tmp_path / "data", workers=0)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    save_config(variant_config(base, "TS", ["sampler.num_frames=3"]), run_dir / "config.yaml")
    (run_dir / "results.json").write_text("{}")
    train_variant(variant_config(base, "TS", ["sampler.num_frames=3", "data.workers=2"]), run_dir)  # skipped
    with pytest.raises(ConfigError, match=r"sampler\.num_frames: 3 -> 2.*delete that folder"):
        train_variant(variant_config(base, "TS", ["sampler.num_frames=2"]), run_dir)
