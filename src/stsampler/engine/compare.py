"""Train several sampler variants on the same data and budget, then score them on the same episodes.

Used by ``stsampler demo`` and ``benchmarks/synthetic_ablation.py``. Every variant is a set of
``key=value`` overrides of one base configuration, trained into its own run folder (resumed when a
checkpoint is there, skipped when finished; a folder holding another configuration's run is an
error) and evaluated on one fixed, saved list of test episodes.
A variant's test result is saved in its run folder (``test_result.json``) with the SHA-256 of its
checkpoint, of the episode list and of the event metadata, and reused while all three are unchanged,
so adding a row or a training seed to a comparison evaluates only the new runs. Delete the file to
evaluate again.
On synthetic data the sampler's picks are also scored against the ground-truth events
(:class:`stsampler.engine.metrics.EventScorer`).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from stsampler.config import Config, apply_overrides, config_from_dict, config_to_dict, load_saved_config
from stsampler.data.episodes import load_episodes, save_episodes
from stsampler.engine import distributed
from stsampler.engine.builder import build_dataset
from stsampler.engine.checkpoint import CHECKPOINT_DIR, LAST, load_model, recipe_diff, resolve_checkpoint
from stsampler.engine.evaluate import evaluate, make_episodes
from stsampler.engine.metrics import EventScorer
from stsampler.engine.runtime import resolve_amp
from stsampler.engine.train import train
from stsampler.errors import ConfigError
from stsampler.io import atomic_write_json, file_sha256

TEST_RESULT = "test_result.json"


@dataclass
class VariantResult:
    """One row of a comparison table (accuracies and hit rates in percent)."""

    name: str
    accuracy: float
    ci95: float
    hit_rate: float | None
    magnification: float | None
    episodes_per_s: float
    run_dir: str


def variant_config(base: Config, name: str, overrides: Sequence[str]) -> Config:
    """``base`` with ``overrides`` applied and ``name`` set."""
    values = apply_overrides(config_to_dict(base), [*overrides, f"name={name}"])
    return config_from_dict(values, source=f"variant {name}")


def train_variant(cfg: Config, run_dir: Path, progress: bool = True) -> None:
    """Train ``cfg`` into ``run_dir``: resume an interrupted run, skip a finished one.

    Raises:
        ConfigError: ``run_dir`` holds a run of another configuration (a changed default or
            override), whose results would otherwise be reported as this one's.
    """
    saved = run_dir / "config.yaml"
    if saved.is_file():
        diffs = recipe_diff(config_to_dict(load_saved_config(saved)), config_to_dict(cfg))
        if diffs:
            raise ConfigError(
                f"{run_dir} holds a run of another configuration ({'; '.join(diffs)}): delete that folder "
                "to train this one, or choose another output folder"
            )
    if (run_dir / "results.json").is_file():
        return
    train(cfg, run_dir, resume=(run_dir / CHECKPOINT_DIR / LAST).is_file(), progress=progress)


def fixed_test_episodes(cfg: Config, path: Path, way: int, shot: int, num: int, seed: int):
    """The fixed test episodes at ``path``: loaded when present (checked against the dataset), else drawn and saved."""
    dataset = build_dataset(cfg, cfg.eval.split, train=False)
    if path.is_file():
        episodes, _ = load_episodes(path, dataset_keys=dataset.keys)
        return episodes
    episodes = make_episodes(dataset, way, shot, cfg.eval.query, num, seed)
    save_episodes(path, episodes, {"split": cfg.eval.split, "seed": seed}, dataset_keys=dataset.keys)
    return episodes


def evaluate_variant(
    cfg: Config, run_dir: Path, episodes, shot: int, metadata: dict | None, progress: bool = True
) -> VariantResult:
    """Evaluate the best checkpoint of ``run_dir`` on ``episodes`` (plus event scores when ``metadata``)."""
    device = distributed.init(cfg.train.device)
    model, cfg = load_model(run_dir, device)
    dataset = build_dataset(cfg, cfg.eval.split, train=False)
    scorer = (
        EventScorer(dataset, metadata)
        if metadata is not None and cfg.sampler.kind != "oracle"
        else None
    )
    result = evaluate(
        model, dataset, episodes, shot, device, resolve_amp(cfg.train.amp, device, cfg.model.backbone),
        workers=cfg.data.workers, progress=progress, on_batch=scorer,
    )
    return VariantResult(
        name=cfg.name,
        accuracy=result.accuracy,
        ci95=result.ci95,
        hit_rate=scorer.hit_rate if scorer else (100.0 if cfg.sampler.kind == "oracle" else None),
        magnification=scorer.magnification if scorer else None,
        episodes_per_s=result.episodes_per_s,
        run_dir=str(run_dir),
    )


def _inputs_key(episodes_path: Path, metadata: dict | None) -> dict[str, str | None]:
    """What every saved test result of one comparison depends on: the episode list and the event metadata."""
    events = None if metadata is None else hashlib.sha256(json.dumps(metadata, sort_keys=True).encode()).hexdigest()
    return {"episodes_sha256": file_sha256(episodes_path), "metadata_sha256": events}


def _result_key(run_dir: Path, inputs: dict[str, str | None]) -> dict[str, str | None]:
    """What a run's saved test result depends on: its checkpoint, plus the comparison's ``inputs``."""
    return {"checkpoint_sha256": file_sha256(resolve_checkpoint(run_dir)), **inputs}


def _saved_test_result(path: Path, key: dict) -> VariantResult | None:
    """The result saved at ``path`` if it was computed for ``key``; None if absent, unreadable or stale."""
    try:
        saved = json.loads(path.read_text())
        return VariantResult(**saved["result"]) if saved.get("key") == key else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def tested_variant(
    cfg: Config, run_dir: Path, episodes, inputs: dict[str, str | None], shot: int, metadata: dict | None,
    progress: bool = True,
) -> VariantResult:
    """:func:`evaluate_variant`, or the result saved in ``run_dir`` by an earlier call on the same
    checkpoint and the same ``inputs`` (:func:`_inputs_key` of the episode list and metadata)."""
    key = _result_key(run_dir, inputs)
    path = run_dir / TEST_RESULT
    result = _saved_test_result(path, key)
    if result is None:
        result = evaluate_variant(cfg, run_dir, episodes, shot, metadata, progress)
        atomic_write_json(path, {"key": key, "result": asdict(result)})
    return result


def compare(
    base: Config,
    variants: dict[str, Sequence[str]],
    out_dir: Path,
    eval_episodes: int,
    metadata: dict | None = None,
    progress: bool = True,
) -> list[VariantResult]:
    """Train every variant (``name -> overrides``) under ``out_dir/runs/<name>`` and evaluate all of them
    on the same ``eval_episodes`` test episodes (saved to ``out_dir/test_episodes_<way>way_<shot>shot.json``)."""
    way = base.eval.way or base.train.way
    shot = base.eval.shot or base.train.shot
    episodes_path = out_dir / f"test_episodes_{way}way_{shot}shot.json"
    episodes = fixed_test_episodes(base, episodes_path, way, shot, eval_episodes, base.eval.seed)
    inputs = _inputs_key(episodes_path, metadata)
    results = []
    for name, overrides in variants.items():
        cfg = variant_config(base, name, overrides)
        run_dir = out_dir / "runs" / name
        train_variant(cfg, run_dir, progress)
        results.append(tested_variant(cfg, run_dir, episodes, inputs, shot, metadata, progress))
    return results


def event_cells(hit_rate: float | None, magnification: float | None) -> tuple[str, str]:
    """The hit-rate and magnification cells of a results table ("-" where not measured)."""
    return ("-" if hit_rate is None else f"{hit_rate:.1f}", "-" if magnification is None else f"{magnification:.2f}x")


def format_table(results: Sequence[VariantResult], title: str = "") -> str:
    """A Markdown table of ``results``."""
    lines = [f"### {title}", ""] if title else []
    lines += [
        "| variant | accuracy (%) | 95% CI | temporal hit rate (%) | event magnification |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        hit, mag = event_cells(r.hit_rate, r.magnification)
        lines.append(f"| {r.name} | {r.accuracy:.1f} | +-{r.ci95:.1f} | {hit} | {mag} |")
    return "\n".join(lines) + "\n"


def results_json(results: Sequence[VariantResult]) -> str:
    """``results`` as indented JSON."""
    return json.dumps([asdict(r) for r in results], indent=2) + "\n"
