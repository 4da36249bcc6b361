"""Compared variants: ``stsampler compare`` end to end on tiny data, saved test results reused only for the
same checkpoint, episodes and metadata, run folders of another configuration and unknown keys refused."""
from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

import pytest

from stsampler.cli import main
from stsampler.config import save_config
from stsampler.demo import DemoConfig
from stsampler.engine import compare as compare_module
from stsampler.engine.checkpoint import BEST, CHECKPOINT_DIR
from stsampler.engine.compare import (
    TEST_RESULT,
    RunJob,
    VariantResult,
    _inputs_key,
    _result_key,
    _saved_test_result,
    compare,
    default_title,
    run_folder,
    run_side_by_side,
    train_variant,
    variant_config,
)
from stsampler.errors import ConfigError, DatasetError
from stsampler.io import atomic_write_json


def result() -> VariantResult:
    return VariantResult("all", 51.0, 2.3, 43.1, 1.8, 8.7, "runs/all", [0.4, 0.6], {"c00": 50.0})


def compare_argv(recipe: Path, out: Path, *extra: str) -> list[str]:
    """Two variants (the tiny recipe, and the learned sampler), 2 seeds, 4 test episodes."""
    return [
        "compare", str(recipe), "train.episodes=2", *extra,
        "--variant", "uniform",
        "--variant", "learned", "sampler.kind=learned", "sampler.selector_warmup=0", "sampler.sigma_every=1",
        "--seeds", "2", "--episodes", "4", "--out", str(out), "--pictures", "1",
    ]


@pytest.fixture(scope="module")
def compared(tiny_config, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A finished ``stsampler compare`` folder and the arguments that made it."""
    tmp = tmp_path_factory.mktemp("compare")
    recipe = save_config(tiny_config(), tmp / "tiny.yaml")
    argv = compare_argv(recipe, tmp / "out")
    assert main(argv) == 0
    return tmp / "out", argv


def test_compare_writes_table_json_and_page(compared, capsys) -> None:
    out, _ = compared
    doc = json.loads((out / "compare.json").read_text())
    assert [v["name"] for v in doc["variants"]] == ["uniform", "learned"]
    assert doc["seeds"] == 2 and doc["episodes"] == 4 and doc["baseline"] == "uniform"
    for variant in doc["variants"]:
        assert [r["seed"] for r in variant["runs"]] == [0, 1]
        assert all(len(r["per_episode"]) == 4 and r["per_class"] for r in variant["runs"])
        assert all((out / r["run_dir"] / "checkpoints").is_dir() for r in variant["runs"])
        accuracies = [r["accuracy"] for r in variant["runs"]]
        assert variant["accuracy"] == pytest.approx(sum(accuracies) / 2)
        assert (variant["accuracy_min"], variant["accuracy_max"]) == (min(accuracies), max(accuracies))
    base, learned = doc["variants"]
    assert base["difference"] is None
    columns = [r["per_episode"] for r in base["runs"]] + [r["per_episode"] for r in learned["runs"]]
    expected = [100 * ((b0 + b1) - (a0 + a1)) / 2 for a0, a1, b0, b1 in zip(*columns, strict=True)]
    assert learned["difference"]["per_episode"] == pytest.approx(expected)
    assert not Path(doc["episodes_file"]).is_absolute() and (out / doc["episodes_file"]).is_file()
    assert doc["command"].startswith("stsampler compare ") and "--seeds 2 --episodes 4" in doc["command"]
    markdown = (out / "compare.md").read_text()
    assert doc["command"] in markdown and "| learned |" in markdown and "paired difference" in markdown
    assert (out / "report.html").is_file()


def test_a_rerun_trains_and_evaluates_nothing(compared, monkeypatch, capsys) -> None:
    out, argv = compared
    before = json.loads((out / "compare.json").read_text())
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("*.pt")}
    assert mtimes and all(p.is_file() for p in (out / "runs").glob(f"*/seed*/{TEST_RESULT}"))

    def refuse(*args, **kwargs):
        raise AssertionError("a finished run was trained or evaluated again")

    monkeypatch.setattr(compare_module, "train", refuse)
    monkeypatch.setattr(compare_module, "evaluate_variant", refuse)
    assert main(argv) == 0
    assert json.loads((out / "compare.json").read_text())["variants"] == before["variants"]
    assert {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("*.pt")} == mtimes
    assert f"regenerate with: {before['command']}" in capsys.readouterr().out


def test_a_moved_comparison_is_reused_and_names_its_new_run_folders(compared, tmp_path, monkeypatch) -> None:
    out, argv = compared
    moved = tmp_path / "moved"
    shutil.copytree(out, moved)

    def refuse(*args, **kwargs):
        raise AssertionError("a finished run was trained or evaluated again")

    monkeypatch.setattr(compare_module, "train", refuse)
    monkeypatch.setattr(compare_module, "evaluate_variant", refuse)
    argv = [*argv]
    argv[argv.index("--out") + 1] = str(moved)
    assert main(argv) == 0
    runs = [run for v in json.loads((moved / "compare.json").read_text())["variants"] for run in v["runs"]]
    assert runs and all((moved / run["run_dir"]).is_dir() and not run["run_dir"].startswith("..") for run in runs)


def test_another_number_of_test_episodes_is_refused_for_a_saved_list(compared, monkeypatch, capsys) -> None:
    out, argv = compared

    def refuse(*args, **kwargs):
        raise AssertionError("trained although the comparison was refused")

    monkeypatch.setattr(compare_module, "train", refuse)
    argv = [*argv]
    argv[argv.index("--episodes") + 1] = "5"
    assert main(argv) == 2
    assert "holds 4 test episodes, not the 5 asked for" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["sampler.knd=uniform", "train.lr=fast"])
def test_a_bad_variant_key_or_value_is_refused_before_anything_trains(
    tiny_config, tmp_path, monkeypatch, capsys, bad
) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("trained before every variant was checked")

    monkeypatch.setattr(compare_module, "train", refuse)
    recipe = save_config(tiny_config(), tmp_path / "tiny.yaml")
    argv = ["compare", str(recipe), "--variant", "a", "--variant", "b", bad, "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert "stsampler compare: error:" in error and bad.split("=")[0] in error
    assert not (tmp_path / "out" / "runs").exists()


def test_repeated_variant_names_are_refused(tmp_path, capsys) -> None:
    argv = ["compare", "synthetic/sampler", "--variant", "a", "--variant", "a", "x=1", "--out", str(tmp_path)]
    assert main(argv) == 2
    assert "--variant 'a'" in capsys.readouterr().err


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
    old = {k: v for k, v in asdict(result()).items() if k not in ("per_episode", "per_class")}
    atomic_write_json(run_dir / "old.json", {"key": key, "result": old})  # saved before per-episode accuracies
    assert _saved_test_result(run_dir / "old.json", key) is None


def test_a_run_folder_of_another_configuration_is_refused(tmp_path) -> None:
    base = DemoConfig.quick().base_config(tmp_path / "data", workers=0)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    save_config(variant_config(base, "TS", ["sampler.num_frames=3"]), run_dir / "config.yaml")
    (run_dir / "results.json").write_text("{}")
    train_variant(variant_config(base, "TS", ["sampler.num_frames=3", "data.workers=2"]), run_dir)  # skipped
    with pytest.raises(ConfigError, match=r"sampler\.num_frames: 3 -> 2.*delete that folder"):
        train_variant(variant_config(base, "TS", ["sampler.num_frames=2"]), run_dir)


def test_a_run_folder_of_another_configuration_is_refused_before_anything_trains(
    tiny_config, tmp_path, monkeypatch
) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("trained before every run folder was checked")

    monkeypatch.setattr(compare_module, "train", refuse)
    base = tiny_config()
    variants = {"a": [], "b": ["sampler.num_frames=3"]}
    stale = run_folder(tmp_path, "b", 1)
    stale.mkdir(parents=True)
    save_config(variant_config(base, "b", ["sampler.num_frames=2", "train.seed=1"]), stale / "config.yaml")
    with pytest.raises(ConfigError, match=r"seed1 holds a run of another configuration"):
        compare(base, variants, tmp_path, eval_episodes=4, seeds=2, progress=False)
    assert not run_folder(tmp_path, "a", 0).exists()


def _per_run(out: Path) -> dict[str, list[float]]:
    """Each run's per-episode accuracies in a comparison's compare.json, by run folder."""
    doc = json.loads((out / "compare.json").read_text())
    return {run["run_dir"]: run["per_episode"] for variant in doc["variants"] for run in variant["runs"]}


def test_runs_side_by_side_give_what_one_after_another_gives(tiny_config, tmp_path) -> None:
    recipe = save_config(tiny_config(), tmp_path / "tiny.yaml")
    assert main(compare_argv(recipe, tmp_path / "serial", "--threads", "2")) == 0
    assert main(compare_argv(recipe, tmp_path / "parallel", "--jobs", "2", "--threads", "2")) == 0
    assert _per_run(tmp_path / "parallel") == _per_run(tmp_path / "serial")
    command = json.loads((tmp_path / "parallel" / "compare.json").read_text())["command"]
    assert command.endswith("--jobs 2 --threads 2")
    for results in (tmp_path / "parallel" / "runs").glob("*/seed*/results.json"):
        assert json.loads(results.read_text())["threads"] == 2  # not the test process's default


def test_a_failed_side_by_side_run_is_raised_with_its_message(tiny_config, tmp_path) -> None:
    missing = tmp_path / "no_such_videos"
    cfg = variant_config(tiny_config(), "broken", [f"data.data_root={missing}"])
    runs = [RunJob(cfg, tmp_path / f"run{i}", [], {}, 1, None) for i in range(3)]
    with pytest.raises(DatasetError, match="no_such_videos"):
        run_side_by_side(runs, jobs=2, threads=1)


@pytest.mark.parametrize(("jobs", "threads"), [(0, None), (2, 0)])
def test_side_by_side_needs_a_job_and_a_thread(jobs, threads) -> None:
    with pytest.raises(ConfigError, match="at least 1"):
        run_side_by_side([], jobs=jobs, threads=threads)


def test_side_by_side_is_refused_under_torchrun(monkeypatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="torchrun"):
        run_side_by_side([], jobs=2)


def test_the_title_names_each_variant_trained_on_another_budget(tiny_config) -> None:
    base = variant_config(tiny_config(), "tiny", ["train.episodes=8"])
    same = default_title(base, {"uniform": [], "learned": ["sampler.kind=learned"]}, 300, 3)
    assert same.endswith("3 training seeds, 8 training episodes per run")
    longer = default_title(base, {"uniform": [], "learned-2x": ["sampler.kind=learned", "train.episodes=16"]}, 300, 3)
    assert longer.endswith("8 training episodes per run (learned-2x: 16)")
