"""The demo's whole path on a tiny configuration: data, two trainings, shared test episodes, table, pictures."""
from __future__ import annotations

import json

import pytest

from stsampler.demo import VARIANTS, DemoConfig, run_demo
from stsampler.engine import compare as compare_module
from stsampler.engine.compare import TEST_RESULT


@pytest.mark.slow
def test_quick_demo_writes_table_runs_and_pictures(tmp_path, capsys, monkeypatch):
    out = tmp_path / "demo"
    table = run_demo(DemoConfig.quick(), out, progress=False)

    rows = json.loads((out / "results.json").read_text())
    assert [r["name"] for r in rows] == list(VARIANTS)
    for row in rows:
        assert 0.0 <= row["accuracy"] <= 100.0 and row["ci95"] >= 0.0
        assert 0.0 <= row["hit_rate"] <= 100.0
        assert (out / "runs" / row["name"] / "checkpoints").is_dir()
    assert rows[0]["magnification"] == pytest.approx(1.0)  # uniform frames are never warped
    assert (out / "results.md").read_text() == table
    assert "| uniform |" in table and "| sampler |" in table
    assert (out / "pictures" / "index.html").is_file()
    assert list((out / "pictures").glob("*.png"))
    assert "pictures of what the sampler sees" in capsys.readouterr().out

    # Everything finished is reused: a second run trains and evaluates nothing and gives the same table.
    mtimes = {p: p.stat().st_mtime for p in (out / "runs").rglob("*.pt")}
    assert all((out / "runs" / name / TEST_RESULT).is_file() for name in VARIANTS)

    def no_evaluation(*args, **kwargs):
        raise AssertionError("a finished run with a saved test result was evaluated again")

    monkeypatch.setattr(compare_module, "evaluate_variant", no_evaluation)
    assert run_demo(DemoConfig.quick(), out, progress=False) == table
    assert {p: p.stat().st_mtime for p in (out / "runs").rglob("*.pt")} == mtimes
