"""The report page of a comparison: ``OUT/report.html``, one self-contained file.

Built from ``OUT/compare.json`` and the finished run folders only (nothing trains or is
evaluated, except that ``show`` draws a few test videos): the comparison table, the accuracy per
test class per variant, the distribution of the per-episode paired differences against the first
variant, the learning curves of every run (``results.json``: ``train_history`` for the training
loss, ``val`` for the validation accuracy and, on synthetic data, the temporal hit rate), and, for
variants with a learned sampler, what their sampler sees in the test videos on which the variants
disagree most. Plots are drawn with matplotlib (Agg) and inlined as base64 PNG; the page loads
nothing else.
"""
from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from stsampler.config import Config, load_saved_config  # noqa: E402
from stsampler.data.episodes import load_episodes  # noqa: E402
from stsampler.engine.builder import build_dataset  # noqa: E402
from stsampler.engine.compare import (  # noqa: E402
    COMPARE_JSON,
    VariantSummary,
    compare,
    default_title,
    episodes_file,
    format_table,
    write_comparison,
)
from stsampler.engine.metrics import synthetic_metadata  # noqa: E402
from stsampler.engine.stats import seed_mean_per_episode  # noqa: E402
from stsampler.errors import ConfigError  # noqa: E402
from stsampler.io import atomic_write_text  # noqa: E402

REPORT = "report.html"
PICTURES_DIR = "report_pictures"
_STYLE = (
    "body{font-family:sans-serif;max-width:1150px;margin:1em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}"
    "td:first-child,th:first-child{text-align:left}th{background:#eee}code{background:#f4f4f4;padding:1px 3px}"
    "img{max-width:100%}"
)


def load_comparison(out_dir: Path) -> dict:
    """``out_dir/compare.json``.

    Raises:
        ConfigError: missing or unreadable (naming the file and what to run).
    """
    path = out_dir / COMPARE_JSON
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path} ({exc}): run `stsampler compare ... --out {out_dir}` first") from exc


def _png(fig: Figure) -> str:
    """An ``<img>`` tag holding ``fig`` as an inlined PNG (the figure is closed)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def _png_file(path: Path) -> str:
    """An ``<img>`` tag holding the PNG file at ``path``."""
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def table_html(comparison: dict) -> str:
    """The comparison table exactly as ``compare.json`` holds it (``table``)."""
    header = "".join(f"<th>{html.escape(h)}</th>" for h in comparison["table"]["header"])
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
        for row in comparison["table"]["rows"]
    )
    return f'<table id="comparison"><thead><tr>{header}</tr></thead><tbody>{rows}</tbody></table>'


def per_class_figure(variants: Sequence[dict]) -> Figure:
    """Grouped bars: each test class's accuracy (mean over seeds) per variant; below it, each class's
    temporal hit rate for the variants whose every run recorded one (none: no second panel)."""
    classes = sorted({c for v in variants for r in v["runs"] for c in r["per_class"]})
    panels = [("per_class", "accuracy (%)", variants)]
    with_hits = [v for v in variants if all(r.get("per_class_hit_rate") for r in v["runs"])]
    if with_hits:
        panels.append(("per_class_hit_rate", "temporal hit rate (%)", with_hits))
    width_in = max(6.0, 0.6 * len(classes) * len(variants) ** 0.5)
    fig, axes = plt.subplots(len(panels), 1, figsize=(width_in, 3.2 * len(panels)), squeeze=False)
    for ax, (field, label, shown) in zip(axes[:, 0], panels, strict=True):
        width = 0.8 / len(shown)
        for k, v in enumerate(shown):
            means = [sum(r[field].get(c, 0.0) for r in v["runs"]) / len(v["runs"]) for c in classes]
            ax.bar([i + k * width for i in range(len(classes))], means, width, label=v["name"])
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(classes))], classes, rotation=45, ha="right",
                      fontsize=8)
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def difference_figure(variants: Sequence[dict]) -> Figure:
    """Histogram of the per-episode paired differences of each variant against the first."""
    others = [v for v in variants if v["difference"] is not None]
    fig, axes = plt.subplots(1, len(others), figsize=(3.6 * len(others), 2.8), squeeze=False)
    for ax, v in zip(axes[0], others, strict=True):
        diff = v["difference"]
        ax.hist(diff["per_episode"], bins=21, color="tab:blue")
        ax.axvline(0.0, color="black", linewidth=0.8)
        ax.axvline(diff["mean"], color="tab:red", label=f"mean {diff['mean']:+.1f}")
        ax.set_title(f"{v['name']} - {variants[0]['name']}", fontsize=9)
        ax.set_xlabel("per-episode difference (points)", fontsize=8)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("episodes")
    return fig


def learning_curves_figure(variants: Sequence[dict], out_dir: Path) -> Figure:
    """Training loss and validation accuracy against training episodes, one line per run, and the validation
    temporal hit rate where the runs recorded it (synthetic data: whether and when a selector found the events)."""
    runs = []
    for k, v in enumerate(variants):
        for r in v["runs"]:
            path = out_dir / r["run_dir"] / "results.json"
            results = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
            runs.append((f"C{k % 10}", f"{v['name']} seed {r['seed']}", results))
    panels = [("train_history", "loss", "training loss", ".-"), ("val", "accuracy", "validation accuracy (%)", "o-")]
    if any("hit_rate" in h for _, _, results in runs for h in results.get("val", [])):
        panels.append(("val", "hit_rate", "validation temporal hit rate (%)", "o-"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.2))
    for ax, (history, key, ylabel, style) in zip(axes, panels, strict=True):
        for color, label, results in runs:
            points = [h for h in results.get(history, []) if key in h]
            ax.plot([h["episodes"] for h in points], [h[key] for h in points], style, color=color, alpha=0.7,
                    label=label)
        ax.set(xlabel="training episodes", ylabel=ylabel)
    axes[1].legend(fontsize=7)
    return fig


def disagreement_order(variants: Sequence[dict]) -> list[int]:
    """Test episode indices, most disagreed on first: the range over variants of the seed-averaged accuracy."""
    means = [seed_mean_per_episode([r["per_episode"] for r in v["runs"]]) for v in variants]
    spread = [max(values) - min(values) for values in zip(*means, strict=True)]
    return sorted(range(len(spread)), key=lambda i: -spread[i])


def sampler_pictures(comparison: dict, out_dir: Path, count: int) -> str:
    """What each learned-sampler variant's seed-0 run sees in the first query video of the ``count``
    test episodes the variants disagree on most (``stsampler show``), as HTML sections."""
    from stsampler.viz import show

    variants = comparison["variants"]
    learned = []
    for v in variants:
        run_dir = out_dir / v["runs"][0]["run_dir"]
        cfg = load_saved_config(run_dir / "config.yaml")
        if cfg.sampler.kind == "learned":
            learned.append((v["name"], run_dir, cfg))
    if not learned or count < 1:
        return "<p>No variant has a learned sampler: nothing to draw.</p>"
    cfg = learned[0][2]
    dataset = build_dataset(cfg, cfg.eval.split, train=False)
    episodes, _ = load_episodes(out_dir / comparison["episodes_file"], dataset_keys=dataset.keys)
    chosen = disagreement_order(variants)[:count]
    videos = [dataset.items[episodes[i].query[0]].path for i in chosen]
    sections = [
        f"<p>First query video of test episodes {', '.join(str(i) for i in chosen)} "
        "(the largest range of per-episode accuracy over the variants).</p>"
    ]
    for name, run_dir, _ in learned:
        images = show(run_dir, videos, out_dir / PICTURES_DIR / name, html=False)
        sections.append(f"<h3>{html.escape(name)} (seed 0)</h3>" + "".join(_png_file(p) for p in images))
    return "\n".join(sections)


def build_report(out_dir: Path, pictures: int = 3) -> Path:
    """Write ``out_dir/report.html`` from ``compare.json`` and the run folders; returns its path."""
    comparison = load_comparison(out_dir)
    variants = comparison["variants"]
    seeds = comparison["seeds"]
    parts = [
        f"<h1>{html.escape(comparison['title'])}</h1>",
        f"<p>Regenerate: <code>{html.escape(comparison['command'])}</code></p>",
        table_html(comparison),
        f"<p>Accuracy: mean over {seeds} training seed(s), with the lowest and highest seed beside it (the seed "
        f"spread, shown separately from the test intervals); 95% CI over the {comparison['episodes']} test episodes. "
        f"Paired difference: every run is tested on the same saved episodes, so each variant is set against "
        f"{html.escape(comparison['baseline'])} episode by episode (per episode the mean over seeds of the variant "
        "minus that of the baseline). The test is the paired t-test over the episodes, with the normal "
        "approximation of its interval and p-value (close to exact for the hundreds of episodes a comparison "
        "normally uses; anti-conservative for a handful). Pairing removes the "
        "variation of episode difficulty that both variants share, so its interval is far tighter than comparing "
        "the two accuracies' own intervals; it does not cover the variation between training seeds.</p>",
        "<h2>Accuracy per test class (and where the sampler's picks fall, per class)</h2>",
        _png(per_class_figure(variants)),
    ]
    if len(variants) > 1:
        parts += [f"<h2>Per-episode differences against {html.escape(comparison['baseline'])}</h2>",
                  _png(difference_figure(variants))]
    parts += [
        "<h2>Learning curves</h2>",
        _png(learning_curves_figure(variants, out_dir)),
        "<h2>What the learned samplers see where the variants disagree most</h2>",
        sampler_pictures(comparison, out_dir, pictures),
    ]
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(comparison['title'])}</title><style>{_STYLE}</style></head>\n<body>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )
    return atomic_write_text(out_dir / REPORT, page)


def compare_and_report(
    base: Config,
    variants: dict[str, Sequence[str]],
    out_dir: Path,
    eval_episodes: int,
    seeds: int,
    command: str,
    title: str | None = None,
    pictures: int = 3,
    progress: bool = True,
    jobs: int = 1,
    threads: int | None = None,
) -> tuple[list[VariantSummary], str]:
    """:func:`stsampler.engine.compare.compare` (``jobs`` runs side by side, ``threads`` threads each),
    then ``compare.md``, ``compare.json`` and ``report.html`` in ``out_dir``; returns the summaries and
    their Markdown table under ``title`` (default: :func:`~stsampler.engine.compare.default_title`).
    ``command`` is the command line that regenerates it."""
    summaries = compare(
        base, variants, out_dir, eval_episodes, synthetic_metadata(base), seeds, progress, jobs, threads
    )
    title = title or default_title(base, variants, eval_episodes, seeds)
    write_comparison(summaries, out_dir, episodes_file(out_dir, base), command, title)
    build_report(out_dir, pictures)
    return summaries, format_table(summaries, title)
