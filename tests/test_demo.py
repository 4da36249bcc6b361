"""The demo's whole path on a tiny configuration: data, the shipped synthetic recipe with size overrides,
two trainings, shared test episodes, table, report page."""
from __future__ import annotations

import json

import pytest

from stsampler.config import config_to_dict, load_config
from stsampler.demo import RECIPE, VARIANTS, DemoConfig, run_demo
from stsampler.engine import compare as compare_module
from stsampler.engine.compare import TEST_RESULT

SIZE_KEYS = {
    "data.split_dir", "data.data_root", "data.metadata", "train.way", "train.episodes", "train.val_episodes",
    "train.warmup", "train.val_every", "train.ckpt_every", "sampler.sigma_every", "sampler.selector_warmup",
}


def test_the_demo_changes_only_size_and_data_keys_of_the_shipped_recipe(tmp_path) -> None:
    recipe = config_to_dict(load_config(RECIPE))
    for demo in (DemoConfig(), DemoConfig.quick()):
        changed = config_to_dict(demo.base_config(tmp_path, workers=0))
        differ = {
            f"{section}.{key}" for section, values in recipe.items() if isinstance(values, dict)
            for key, value in values.items() if changed[section][key] != value
        }
        assert differ <= SIZE_KEYS, differ - SIZE_KEYS
        assert changed["model"] == recipe["model"] and changed["data"]["num_frames"] == recipe["data"]["num_frames"]
        assert changed["train"]["episodes"] == demo.episodes
        assert 0 < changed["sampler"]["sigma_every"] < demo.episodes  # the schedule scales with the budget


@pytest.mark.slow
def test_quick_demo_writes_table_runs_and_report(tmp_path, capsys, monkeypatch):
    out = tmp_path / "demo"
    table = run_demo(DemoConfig.quick(), out, progress=False, command="stsampler demo --quick")

    doc = json.loads((out / "compare.json").read_text())
    rows = doc["variants"]
    assert [r["name"] for r in rows] == list(VARIANTS)
    for row in rows:
        assert 0.0 <= row["accuracy"] <= 100.0 and row["ci95"] >= 0.0
        assert 0.0 <= row["hit_rate"] <= 100.0
        assert (out / row["runs"][0]["run_dir"] / "checkpoints").is_dir()
    assert rows[0]["magnification"] == pytest.approx(1.0)  # uniform frames are never warped
    assert rows[1]["difference"] is not None and doc["command"] == "stsampler demo --quick"
    markdown = (out / "compare.md").read_text()
    assert all(line in markdown for line in table.splitlines()[2:])
    assert "| uniform |" in table and "| sampler |" in table
    assert (out / "report.html").is_file() and list((out / "report_pictures" / "sampler").glob("*.png"))
    printed = capsys.readouterr().out
    assert "report.html" in printed and "seed spread is not measured" in printed and "--seeds 3" in printed

    # Everything finished is reused: a second run trains and evaluates nothing and gives the same table.
    mtimes = {p: p.stat().st_mtime for p in (out / "runs").rglob("*.pt")}
    assert all((out / "runs" / name / "seed0" / TEST_RESULT).is_file() for name in VARIANTS)

    def no_evaluation(*args, **kwargs):
        raise AssertionError("a finished run with a saved test result was evaluated again")

    monkeypatch.setattr(compare_module, "evaluate_variant", no_evaluation)
    assert run_demo(DemoConfig.quick(), out, progress=False, command="stsampler demo --quick") == table
    assert {p: p.stat().st_mtime for p in (out / "runs").rglob("*.pt")} == mtimes
