"""Train several variants of one recipe on the same data and budget, then test them on the same episodes.

The machinery of ``stsampler compare``, ``stsampler demo`` and ``benchmarks/synthetic_ablation.py``.
Every variant is a set of ``key=value`` overrides of one base configuration, trained with S
training seeds (``train.seed`` 0..S-1) into ``OUT/runs/<variant>/seed<s>`` (resumed when a
checkpoint is there, skipped when finished; a folder holding another configuration's run is an
error) and evaluated on one fixed, saved list of test episodes. Every variant's configuration is
built, and every run folder checked against it, before anything trains, so a wrong key or value
or a folder of another configuration fails at once. ``jobs`` > 1 trains and tests that many runs side
by side, each in its own process with ``threads`` intra-op threads (:func:`run_side_by_side`): on a
CPU the thread count changes a run's numbers slightly, so a comparison that is to be regenerated
exactly names both.
A run's test result, with its per-episode and per-class accuracies, is saved in its run folder
(``test_result.json``) with the SHA-256 of its checkpoint, of the episode list and of the event
metadata, and reused while all three are unchanged, so adding a variant or a training seed to a
comparison evaluates only the new runs. Delete the file to evaluate again.
On synthetic data the sampler's picks are also scored against the ground-truth events
(:class:`stsampler.engine.metrics.EventScorer`). Each variant is set against the first one by the
paired difference on the shared episodes (:mod:`stsampler.engine.stats`).
"""
from __future__ import annotations

import concurrent.futures
import hashlib
import json
import multiprocessing
import os
import statistics
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Sequence

import torch

from stsampler.config import Config, apply_overrides, config_from_dict, config_to_dict, load_saved_config
from stsampler.data.episodes import Episode, load_episodes, save_episodes
from stsampler.engine import distributed
from stsampler.engine.builder import build_dataset
from stsampler.engine.checkpoint import CHECKPOINT_DIR, LAST, load_model, recipe_diff, resolve_checkpoint
from stsampler.engine.evaluate import eval_task, evaluate, make_episodes
from stsampler.engine.metrics import event_scorer
from stsampler.engine.runtime import resolve_amp
from stsampler.engine.stats import PairedDifference, mean_ci95, paired_difference, seed_mean_per_episode
from stsampler.engine.substitutions import substitution_warning
from stsampler.engine.train import train
from stsampler.errors import ConfigError
from stsampler.io import atomic_write_json, atomic_write_text, file_sha256

TEST_RESULT = "test_result.json"
COMPARE_MD = "compare.md"
COMPARE_JSON = "compare.json"


@dataclass
class VariantResult:
    """The test result of one training run (accuracies and hit rates in percent).

    ``per_episode`` holds each test episode's accuracy in [0, 1] in episode-list order, ``per_class``
    the accuracy (percent) of each test class's queries, ``per_class_hit_rate`` the temporal hit rate
    of each test class's videos (empty where no hit rate was measured, or for results saved before it
    was); ``substitutions`` every unreadable test video
    that was replaced by another of its class (:class:`stsampler.engine.evaluate.Substitutions`).
    """

    name: str
    accuracy: float
    ci95: float
    hit_rate: float | None
    magnification: float | None
    episodes_per_s: float
    run_dir: str
    per_episode: list[float] = field(default_factory=list)
    per_class: dict[str, float] = field(default_factory=dict)
    per_class_hit_rate: dict[str, float] = field(default_factory=dict)
    substitutions: list[dict] = field(default_factory=list)


def variant_config(base: Config, name: str, overrides: Sequence[str]) -> Config:
    """``base`` with ``overrides`` applied and ``name`` set."""
    values = apply_overrides(config_to_dict(base), [*overrides, f"name={name}"])
    return config_from_dict(values, source=f"variant {name}")


def check_run_folder(cfg: Config, run_dir: Path) -> None:
    """Refuse ``run_dir`` if it holds a run of a configuration other than ``cfg``.

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


def train_variant(cfg: Config, run_dir: Path, progress: bool = True) -> None:
    """Train ``cfg`` into ``run_dir``: resume an interrupted run, skip a finished one.

    Raises:
        ConfigError: ``run_dir`` holds a run of another configuration (:func:`check_run_folder`).
    """
    check_run_folder(cfg, run_dir)
    if (run_dir / "results.json").is_file():
        return
    train(cfg, run_dir, resume=(run_dir / CHECKPOINT_DIR / LAST).is_file(), progress=progress)


def fixed_test_episodes(cfg: Config, path: Path, way: int, shot: int, num: int, seed: int):
    """The fixed test episodes at ``path``: loaded when present (checked against the dataset), else drawn and saved.

    Raises:
        ConfigError: the saved list holds another number of episodes than ``num``.
    """
    dataset = build_dataset(cfg, cfg.eval.split, train=False)
    if path.is_file():
        episodes, _ = load_episodes(path, dataset_keys=dataset.keys)
        if len(episodes) != num:
            raise ConfigError(
                f"{path} holds {len(episodes)} test episodes, not the {num} asked for: ask for {len(episodes)}, "
                "or choose another output folder (or delete the file and every test_result.json under it)"
            )
        return episodes
    episodes = make_episodes(dataset, way, shot, cfg.eval.query, num, seed)
    save_episodes(path, episodes, {"split": cfg.eval.split, "seed": seed}, dataset_keys=dataset.keys)
    return episodes


def evaluate_variant(
    cfg: Config, run_dir: Path, episodes, shot: int, metadata: dict | None, progress: bool = True
) -> VariantResult:
    """Evaluate the best checkpoint of ``run_dir`` on ``episodes`` (plus event scores when ``metadata``)."""
    device = distributed.init(cfg.train.device, "train.device")
    model, cfg = load_model(run_dir, device)
    dataset = build_dataset(cfg, cfg.eval.split, train=False)
    scorer = event_scorer(cfg, dataset, metadata)
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
        per_episode=result.per_episode,
        per_class=result.per_class,
        per_class_hit_rate=scorer.per_class_hit_rate if scorer else {},
        substitutions=result.substitutions,
    )


def _inputs_key(episodes_path: Path, metadata: dict | None) -> dict[str, str | None]:
    """What every saved test result of one comparison depends on: the episode list and the event metadata."""
    events = None if metadata is None else hashlib.sha256(json.dumps(metadata, sort_keys=True).encode()).hexdigest()
    return {"episodes_sha256": file_sha256(episodes_path), "metadata_sha256": events}


def _result_key(run_dir: Path, inputs: dict[str, str | None]) -> dict[str, str | None]:
    """What a run's saved test result depends on: its checkpoint, plus the comparison's ``inputs``."""
    return {"checkpoint_sha256": file_sha256(resolve_checkpoint(run_dir)), **inputs}


def _saved_test_result(path: Path, key: dict) -> VariantResult | None:
    """The result saved at ``path`` if it was computed for ``key``; None if absent, unreadable, stale or
    saved without per-episode accuracies (which the paired difference needs)."""
    try:
        saved = json.loads(path.read_text())
        result = VariantResult(**saved["result"]) if saved.get("key") == key else None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return result if result is not None and result.per_episode else None


def tested_variant(
    cfg: Config, run_dir: Path, episodes, inputs: dict[str, str | None], shot: int, metadata: dict | None,
    progress: bool = True,
) -> VariantResult:
    """:func:`evaluate_variant`, or the result saved in ``run_dir`` by an earlier call on the same
    checkpoint and the same ``inputs`` (:func:`_inputs_key` of the episode list and metadata); a saved
    result names the folder it is in now, even if the run folder was moved since."""
    key = _result_key(run_dir, inputs)
    path = run_dir / TEST_RESULT
    result = _saved_test_result(path, key)
    if result is None:
        result = evaluate_variant(cfg, run_dir, episodes, shot, metadata, progress)
        atomic_write_json(path, {"key": key, "result": asdict(result)})
    return replace(result, run_dir=str(run_dir))



@dataclass
class VariantSummary:
    """One row of a comparison: a variant's runs over the training seeds (percent).

    Attributes:
        name, overrides: the variant.
        runs: the test result of each training seed, seed 0 first.
        accuracy: mean over seeds of each run's accuracy; accuracy_min/max: the seed spread.
        ci95: half-width of the 95% interval over the test episodes of the seed-averaged
            per-episode accuracy (:func:`stsampler.engine.stats.mean_ci95`).
        hit_rate, magnification: means over seeds (None where not measured).
        difference: the paired difference against the first variant in percentage points
            (:func:`stsampler.engine.stats.paired_difference`); None for the first variant.
    """

    name: str
    overrides: list[str]
    runs: list[VariantResult]
    accuracy: float
    accuracy_min: float
    accuracy_max: float
    ci95: float
    hit_rate: float | None
    magnification: float | None
    difference: PairedDifference | None


def _mean_or_none(values: Sequence[float | None]) -> float | None:
    """Mean of ``values``, or None if any is None (a metric some runs do not measure)."""
    return None if any(v is None for v in values) else statistics.fmean(values)


def summarise(name: str, overrides: Sequence[str], runs: Sequence[VariantResult],
              baseline: Sequence[VariantResult] | None) -> VariantSummary:
    """The :class:`VariantSummary` of ``runs``, with the paired difference against ``baseline``'s runs."""
    accuracies = [r.accuracy for r in runs]
    _, ci95 = mean_ci95(seed_mean_per_episode([r.per_episode for r in runs]))
    difference = None
    if baseline is not None:
        raw = paired_difference([r.per_episode for r in baseline], [r.per_episode for r in runs])
        difference = PairedDifference(
            mean=100.0 * raw.mean, ci95=100.0 * raw.ci95, p_value=raw.p_value,
            per_episode=[100.0 * d for d in raw.per_episode],
        )
    return VariantSummary(
        name=name, overrides=list(overrides), runs=list(runs), accuracy=statistics.fmean(accuracies),
        accuracy_min=min(accuracies), accuracy_max=max(accuracies), ci95=100.0 * ci95,
        hit_rate=_mean_or_none([r.hit_rate for r in runs]),
        magnification=_mean_or_none([r.magnification for r in runs]), difference=difference,
    )


def default_title(base: Config, variants: dict[str, Sequence[str]], eval_episodes: int, seeds: int) -> str:
    """A comparison's title: the task, the test episodes, the seeds and the training budget (with each
    variant whose overrides give it another budget named beside it)."""
    way, shot = eval_task(base)
    budget = base.train.episodes
    others = {
        name: episodes for name, overrides in variants.items()
        if (episodes := variant_config(base, name, overrides).train.episodes) != budget
    }
    exceptions = f" ({', '.join(f'{name}: {episodes}' for name, episodes in others.items())})" if others else ""
    count = len(variants)
    return (
        f"{base.name}: {count} variant{'s' * (count > 1)}, {way}-way {shot}-shot on {eval_episodes} fixed "
        f"test episodes, {seeds} training seed{'s' * (seeds > 1)}, {budget} training episodes per run{exceptions}"
    )


def seed_overrides(seed: int) -> list[str]:
    """The overrides that make a variant's run of training seed ``seed``."""
    return [f"train.seed={seed}"]


def run_folder(out_dir: Path, name: str, seed: int) -> Path:
    """Where the run of variant ``name`` with training seed ``seed`` lives."""
    return out_dir / "runs" / name / f"seed{seed}"


def episodes_file(out_dir: Path, base: Config) -> Path:
    """The comparison's saved test episodes: ``out_dir/test_episodes_<way>way_<shot>shot.json``."""
    way, shot = eval_task(base)
    return out_dir / f"test_episodes_{way}way_{shot}shot.json"


def compare(
    base: Config,
    variants: dict[str, Sequence[str]],
    out_dir: Path,
    eval_episodes: int,
    metadata: dict | None = None,
    seeds: int = 1,
    progress: bool = True,
    jobs: int = 1,
    threads: int | None = None,
) -> list[VariantSummary]:
    """Train every variant (``name -> overrides``) with ``seeds`` training seeds and test all runs on the
    same ``eval_episodes`` episodes (:func:`episodes_file`), ``jobs`` runs at a time with ``threads``
    threads each (:func:`run_side_by_side`); one summary per variant, in order.

    Raises:
        ConfigError: no variants or seeds, a variant's override names no config key or gives a bad
            value, or a run folder holds another configuration's run (all checked before anything
            trains).
    """
    if not variants or seeds < 1:
        raise ConfigError(f"a comparison needs at least one variant and one seed, got {len(variants)} and {seeds}")
    configs = {
        (name, seed): variant_config(base, name, [*overrides, *seed_overrides(seed)])
        for name, overrides in variants.items()
        for seed in range(seeds)
    }
    for (name, seed), cfg in configs.items():
        check_run_folder(cfg, run_folder(out_dir, name, seed))
    way, shot = eval_task(base)
    path = episodes_file(out_dir, base)
    episodes = fixed_test_episodes(base, path, way, shot, eval_episodes, base.eval.seed)
    inputs = _inputs_key(path, metadata)
    runs = [
        RunJob(cfg, run_folder(out_dir, name, seed), episodes, inputs, shot, metadata)
        for (name, seed), cfg in configs.items()
    ]
    results = dict(zip(configs, run_side_by_side(runs, jobs, threads, progress), strict=True))
    summaries: list[VariantSummary] = []
    for name, overrides in variants.items():
        seed_results = [results[name, seed] for seed in range(seeds)]
        summaries.append(summarise(name, overrides, seed_results, summaries[0].runs if summaries else None))
    return summaries


@dataclass
class RunJob:
    """One run of a comparison: train ``cfg`` into ``run_dir``, then test it (:func:`tested_variant`)."""

    cfg: Config
    run_dir: Path
    episodes: list[Episode]
    inputs: dict[str, str | None]
    shot: int
    metadata: dict | None

    def __call__(self, progress: bool) -> VariantResult:
        train_variant(self.cfg, self.run_dir, progress)
        return tested_variant(self.cfg, self.run_dir, self.episodes, self.inputs, self.shot, self.metadata, progress)


def _use_threads(threads: int) -> None:
    """A side-by-side worker's initialiser: its intra-op thread count."""
    torch.set_num_threads(threads)


def _run_quietly(job: RunJob) -> VariantResult:
    """``job`` in a worker process, without progress bars (they would interleave): a line as it starts
    and one with its accuracy."""
    print(f"{job.run_dir}: started", flush=True)
    start = time.perf_counter()
    result = job(progress=False)
    print(f"{job.run_dir}: {result.accuracy:.1f}% ({(time.perf_counter() - start) / 60:.1f} min)", flush=True)
    return result


def side_by_side_threads(jobs: int, threads: int | None = None) -> int:
    """The intra-op threads of each of ``jobs`` side-by-side runs: ``threads``, or by default this
    process's threads shared out among the jobs (at least one each)."""
    return threads or max(1, torch.get_num_threads() // jobs)


def run_side_by_side(
    runs: Sequence[RunJob], jobs: int = 1, threads: int | None = None, progress: bool = True
) -> list[VariantResult]:
    """The result of every run in ``runs``, in order, running ``jobs`` of them at a time.

    ``jobs`` = 1 runs them one after another in this process (with ``threads`` threads if given).
    Otherwise each runs in a fresh process (spawned, so no state leaks between runs) with
    :func:`side_by_side_threads` intra-op threads. Two one-thread runs side by side use a 2-core CPU
    better than one two-thread run after another. The first failure cancels the runs not yet started,
    waits for the ones running (their checkpoints stay whole) and is raised.

    Raises:
        ConfigError: ``jobs`` or ``threads`` below 1, or ``jobs`` > 1 in a distributed launch (whose
            processes already share the runs out).
    """
    if jobs < 1 or (threads is not None and threads < 1):
        raise ConfigError(f"jobs and threads per job must be at least 1, got {jobs} and {threads}")
    if jobs > 1 and distributed.env_world_size() > 1:
        raise ConfigError("--jobs runs side by side on one machine: leave it at 1 under torchrun, whose "
                          "processes train each run together")
    if jobs == 1:
        before = torch.get_num_threads()
        torch.set_num_threads(threads or before)
        try:
            return [job(progress) for job in runs]
        finally:
            torch.set_num_threads(before)
    threads = side_by_side_threads(jobs, threads)
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
        initializer=_use_threads, initargs=(threads,),
    ) as pool:
        futures = [pool.submit(_run_quietly, job) for job in runs]
        concurrent.futures.wait(futures, return_when=concurrent.futures.FIRST_EXCEPTION)
        failed = next((f for f in futures if f.done() and f.exception() is not None), None)
        if failed is not None:
            pool.shutdown(wait=True, cancel_futures=True)
            raise failed.exception()
        return [future.result() for future in futures]


def event_cells(hit_rate: float | None, magnification: float | None) -> tuple[str, str]:
    """The hit-rate and magnification cells of a results table ("-" where not measured)."""
    return ("-" if hit_rate is None else f"{hit_rate:.1f}", "-" if magnification is None else f"{magnification:.2f}x")


TABLE_HEADER = (
    "variant", "accuracy (%)", "seed min-max", "95% CI", "temporal hit rate (%)", "event magnification",
    "paired difference (points)", "difference 95% CI", "p-value",
)


def _p_value_cell(p: float) -> str:
    """A p-value for the table; below 1e-6 only the bound, which is all a normal approximation supports."""
    return "<1e-6" if p < 1e-6 else f"{p:.3g}"


def table_rows(summaries: Sequence[VariantSummary]) -> list[tuple[str, ...]]:
    """The cells of the comparison table, one tuple per variant (:data:`TABLE_HEADER` order)."""
    rows = []
    for s in summaries:
        hit, mag = event_cells(s.hit_rate, s.magnification)
        spread = f"{s.accuracy_min:.1f}-{s.accuracy_max:.1f}" if len(s.runs) > 1 else "-"
        d = s.difference
        diff = ("baseline", "-", "-") if d is None else (f"{d.mean:+.1f}", f"+-{d.ci95:.1f}", _p_value_cell(d.p_value))
        rows.append((s.name, f"{s.accuracy:.1f}", spread, f"+-{s.ci95:.1f}", hit, mag, *diff))
    return rows


def format_table(summaries: Sequence[VariantSummary], title: str = "") -> str:
    """A Markdown table of ``summaries``."""
    lines = [f"### {title}", ""] if title else []
    lines += ["| " + " | ".join(TABLE_HEADER) + " |", "|" + "---|" * len(TABLE_HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(summaries)]
    return "\n".join(lines) + "\n"


def _relative(path: str | Path, start: Path) -> str:
    """``path`` relative to ``start`` (POSIX separators)."""
    return Path(os.path.relpath(Path(path).resolve(), start.resolve())).as_posix()


def comparison_json(
    summaries: Sequence[VariantSummary], out_dir: Path, episodes_path: Path, command: str, title: str
) -> dict:
    """Everything behind the table: each row's numbers and each run's per-episode and per-class
    accuracies, run folders and the episode list relative to ``out_dir``; ``command`` regenerates it."""
    variants = []
    for s in summaries:
        row = {k: v for k, v in asdict(s).items() if k != "runs"}
        row["runs"] = [
            {**asdict(r), "seed": seed, "run_dir": _relative(r.run_dir, out_dir)} for seed, r in enumerate(s.runs)
        ]
        variants.append(row)
    return {
        "title": title,
        "command": command,
        "seeds": len(summaries[0].runs),
        "episodes": len(summaries[0].runs[0].per_episode),
        "episodes_file": _relative(episodes_path, out_dir),
        "baseline": summaries[0].name,
        "test": (
            "paired difference per episode (mean over seeds of B minus of A); "
            "normal approximation of the paired t-test"
        ),
        "table": {"header": list(TABLE_HEADER), "rows": [list(r) for r in table_rows(summaries)]},
        "variants": variants,
    }


def write_comparison(
    summaries: Sequence[VariantSummary], out_dir: Path, episodes_path: Path, command: str, title: str
) -> str:
    """Write ``out_dir/compare.md`` and ``out_dir/compare.json``; returns the Markdown."""
    seeds = len(summaries[0].runs)
    text = (
        f"# {title}\n\nCommand: `{command}`\n\n{format_table(summaries)}\n"
        f"Accuracy: mean over {seeds} training seed{'s' * (seeds > 1)} (seed min-max beside it); 95% CI over the "
        f"test episodes. Paired difference: against {summaries[0].name} on the same episodes, per episode the "
        "mean over seeds of the variant minus that of the baseline; interval and p-value from the normal "
        "approximation of the paired t-test over the episodes.\n"
    )
    replaced = sum(entry["count"] for s in summaries for run in s.runs for entry in run.substitutions)
    warning = substitution_warning(replaced, f"the runs of {COMPARE_JSON}")
    if warning:
        text += f"\n{warning}\n"
    atomic_write_text(out_dir / COMPARE_MD, text)
    atomic_write_json(out_dir / COMPARE_JSON, comparison_json(summaries, out_dir, episodes_path, command, title))
    return text
