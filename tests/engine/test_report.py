"""The report page: its table shows exactly the numbers of compare.json; ``stsampler report`` rebuilds it
from the run folders; it renders in headless Chromium without console errors (when Chromium is installed)."""
from __future__ import annotations

import html.parser
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stsampler.cli import main
from stsampler.config import save_config
from stsampler.engine.compare import VariantResult, summarise, write_comparison
from stsampler.engine.report import REPORT
from stsampler.io import atomic_write_json

CHECK_SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "check_report.py"


class _TableParser(html.parser.HTMLParser):
    """The cells of the page's ``<table id="comparison">``, row by row (header row first)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._inside = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table" and ("id", "comparison") in attrs:
            self._inside = True
        elif self._inside and tag == "tr":
            self.rows.append([])
        elif self._inside and tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "table":
            self._inside = False
        elif self._cell is not None and tag in ("td", "th"):
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def finished_comparison(tmp_path: Path, tiny_config) -> Path:
    """A comparison folder as ``stsampler compare`` leaves it (two uniform variants, two seeds), without training."""
    out = tmp_path / "cmp"
    per_episode = {"a": [[0.0, 1.0, 0.5, 0.5], [0.5, 1.0, 0.5, 0.0]], "b": [[1.0, 1.0, 0.5, 1.0], [0.5, 1.0, 1.0, 0.5]]}
    summaries = []
    for name, runs in per_episode.items():
        results = []
        for seed, accuracies in enumerate(runs):
            run_dir = out / "runs" / name / f"seed{seed}"
            save_config(tiny_config(), run_dir / "config.yaml")
            history = [{"episodes": e, "loss": 1.5 - e / 10} for e in (2, 4, 6)]
            atomic_write_json(
                run_dir / "results.json", {"train_history": history, "val": [{"episodes": 6, "accuracy": 40.0}]}
            )
            accuracy = 100 * sum(accuracies) / len(accuracies)
            results.append(VariantResult(name, accuracy, 12.3, None, None, 5.0, str(run_dir), accuracies,
                                         {"c0": accuracy, "c1": 100 - accuracy}))
        summaries.append(summarise(name, [], results, summaries[0].runs if summaries else None))
    (out / "episodes.json").write_text("{}")
    command = "stsampler compare tiny.yaml --variant a --variant b"
    write_comparison(summaries, out, out / "episodes.json", command, "tiny")
    return out


def test_the_page_table_equals_compare_json(tmp_path, tiny_config) -> None:
    out = finished_comparison(tmp_path, tiny_config)
    assert main(["report", str(out)]) == 0
    parser = _TableParser()
    parser.feed((out / REPORT).read_text())
    doc = json.loads((out / "compare.json").read_text())
    header, *rows = parser.rows
    assert header == doc["table"]["header"] and len(rows) == 2
    for row, variant in zip(rows, doc["variants"], strict=True):
        cells = dict(zip(header, row, strict=True))
        assert cells["variant"] == variant["name"]
        assert float(cells["accuracy (%)"]) == round(variant["accuracy"], 1)
        assert cells["seed min-max"] == f"{variant['accuracy_min']:.1f}-{variant['accuracy_max']:.1f}"
        assert float(cells["95% CI"].removeprefix("+-")) == round(variant["ci95"], 1)
    b = dict(zip(header, rows[1], strict=True))
    diff = doc["variants"][1]["difference"]
    assert diff["mean"] == pytest.approx(31.25)  # seed means per episode: A .25 1 .5 .25, B .75 1 .75 .75
    assert float(b["paired difference (points)"]) == round(diff["mean"], 1)
    assert float(b["difference 95% CI"].removeprefix("+-")) == round(diff["ci95"], 1)
    assert float(b["p-value"]) == pytest.approx(diff["p_value"], rel=1e-2)
    assert dict(zip(header, rows[0], strict=True))["paired difference (points)"] == "baseline"


def test_the_page_is_self_contained(tmp_path, tiny_config) -> None:
    out = finished_comparison(tmp_path, tiny_config)
    assert main(["report", str(out)]) == 0
    page = (out / REPORT).read_text()
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert page.count('src="data:image/png;base64,') == 3  # per class, differences, learning curves
    assert "No variant has a learned sampler" in page


def test_report_without_a_comparison_is_refused(tmp_path, capsys) -> None:
    assert main(["report", str(tmp_path)]) == 2
    assert "compare.json" in capsys.readouterr().err


@pytest.mark.skipif(not any(map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))),
                    reason="Chromium is not installed")
def test_the_page_renders_in_chromium_without_console_errors(tmp_path, tiny_config) -> None:
    out = finished_comparison(tmp_path, tiny_config)
    assert main(["report", str(out)]) == 0
    check = [sys.executable, str(CHECK_SCRIPT), str(out / REPORT), "--screenshot", str(tmp_path / "shot.png")]
    assert subprocess.run(check, capture_output=True, timeout=120).returncode == 0
    assert (tmp_path / "shot.png").stat().st_size > 0
    broken = out / "broken.html"
    broken.write_text((out / REPORT).read_text().replace("</body>", "<script>missing();</script></body>"))
    done = subprocess.run([*check[:2], str(broken), "--screenshot", str(tmp_path / "b.png")], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1 and "Uncaught" in done.stderr


def test_learning_curves_add_the_hit_rate_only_where_runs_recorded_it(tmp_path) -> None:
    from stsampler.engine.report import learning_curves_figure

    def variant(name: str, val: list[dict]) -> dict:
        atomic_write_json(tmp_path / name / "results.json", {
            "train_history": [{"episodes": 4, "loss": 1.5}, {"episodes": 8, "loss": 1.2}], "val": val})
        return {"name": name, "runs": [{"seed": 0, "run_dir": name}]}

    plain = [variant("uniform", [{"episodes": 8, "accuracy": 30.0}])]
    assert len(learning_curves_figure(plain, tmp_path).axes) == 2
    scored = [{"episodes": 4, "accuracy": 30.0, "hit_rate": 12.0}, {"episodes": 8, "accuracy": 40.0, "hit_rate": 35.0}]
    figure = learning_curves_figure([*plain, variant("sampler", scored)], tmp_path)
    hit_axis = figure.axes[2]
    assert len(hit_axis.lines) == 2 and list(hit_axis.lines[1].get_ydata()) == [12.0, 35.0]


def test_per_class_bars_add_the_hit_rate_only_for_variants_that_recorded_it() -> None:
    from stsampler.engine.report import per_class_figure

    uniform = {"name": "uniform", "runs": [{"per_class": {"a": 20.0, "b": 40.0}}]}
    assert len(per_class_figure([uniform]).axes) == 1
    sampler = {"name": "sampler", "runs": [
        {"per_class": {"a": 60.0, "b": 80.0}, "per_class_hit_rate": {"a": 10.0, "b": 90.0}},
        {"per_class": {"a": 70.0, "b": 90.0}, "per_class_hit_rate": {"a": 30.0, "b": 70.0}},
    ]}
    figure = per_class_figure([uniform, sampler])
    assert len(figure.axes) == 2
    hit_bars = figure.axes[1].patches
    assert [bar.get_height() for bar in hit_bars] == [20.0, 80.0]  # the sampler's means over its two seeds
