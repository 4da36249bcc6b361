"""The paper's ablation on synthetic actions: which sampler components help, against uniform and the oracle.

Rows: none (uniform frames), TS, SA, TS+SA, TS+ada, SA+ada, all (TS+SA+ada), and two upper bounds:
oracle (the event's frames, each cropped to its event box) and oracle-clip (the same frames cropped
to one box around the object in all of them, which keeps its motion). Each row is a variant of the
shipped recipe ``synthetic/sampler`` (``stsampler compare``, :mod:`stsampler.engine.compare`),
trained on the same data, backbone and episode budget with ``--seeds`` training seeds, and tested on
the same fixed test episodes, in 5-way 1-shot and 5-shot. The table gives each row's mean accuracy over the
seeds with its seed spread and 95% interval, its paired difference against uniform frames, the
temporal hit rate (selected frames inside the event span) and the magnification of the event box;
then the share of the gap between uniform frames and each oracle that the full sampler closes. The
report and its command go to benchmarks/results/; each shot's folder also holds compare.md,
compare.json and report.html.

    python benchmarks/synthetic_ablation.py --out runs/ablation --seeds 3 1
    python benchmarks/synthetic_ablation.py --out runs/ablation --shots 1 --rows none all oracle
    python benchmarks/synthetic_ablation.py --out runs/ablation --jobs 2 --threads 1   # two runs at a time
    python benchmarks/synthetic_ablation.py --out runs/ablation --set sampler.max_zoom=6 --label zoom6   # a candidate

``--episodes``, ``--eval-episodes`` and ``--seeds`` take one value for every shot or one per shot.
By default 1-shot rows train for the recipe's 320 episodes and are tested on 300; 5-shot rows train
for 100 episodes and are tested on 100: with one query per class a 5-shot episode holds 30 videos
against 10, so each row sees a comparable number of training videos in both tables (3000 against
3200). Only the data paths, the shot and the budget are overridden
(:meth:`stsampler.demo.DemoConfig.overrides`); the rest is the recipe's, or with ``--set`` a
candidate change of it, whose runs go to ``OUT/<shot>shot-LABEL`` beside the recipe's. The report goes to
benchmarks/results/synthetic_ablation.md, or synthetic_ablation_5shot.md for a run of 5-shot rows only, each
with ``_LABEL`` before the suffix for a candidate, unless ``--results`` says otherwise.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import time
from pathlib import Path

from _common import (
    add_candidate_options,
    available_devices,
    candidate_change,
    machine_description,
    markdown_report,
    report_path,
    write_report,
)

from stsampler.cli import add_side_by_side_options, side_by_side_words
from stsampler.data.events import best_hit_rate
from stsampler.data.splits import load_split
from stsampler.data.synthetic import generate_dataset, load_metadata
from stsampler.demo import DemoConfig
from stsampler.engine.compare import VariantSummary, run_folder, variant_config
from stsampler.engine.report import compare_and_report

ABLATION = {
    "none": ["sampler.kind=uniform"],
    "TS": ["sampler.kind=learned", "sampler.temporal=true", "sampler.spatial=false", "sampler.task_adaptive=false"],
    "SA": ["sampler.kind=learned", "sampler.temporal=false", "sampler.spatial=true", "sampler.task_adaptive=false"],
    "TS+SA": ["sampler.kind=learned", "sampler.temporal=true", "sampler.spatial=true", "sampler.task_adaptive=false"],
    "TS+ada": ["sampler.kind=learned", "sampler.temporal=true", "sampler.spatial=false", "sampler.task_adaptive=true"],
    "SA+ada": ["sampler.kind=learned", "sampler.temporal=false", "sampler.spatial=true", "sampler.task_adaptive=true"],
    "all": ["sampler.kind=learned", "sampler.temporal=true", "sampler.spatial=true", "sampler.task_adaptive=true"],
    "oracle": ["sampler.kind=oracle"],
    "oracle-clip": ["sampler.kind=oracle", "sampler.oracle_box=clip"],
}
#: The upper-bound rows: each frame cropped to its event box, or all of a clip's frames to one box.
ORACLES = ("oracle", "oracle-clip")
TRAIN_EPISODES = {1: DemoConfig.episodes, 5: 100}
TEST_EPISODES = {1: DemoConfig.eval_episodes, 5: 100}
SEEDS = {1: 1, 5: 1}
RESULTS = Path(__file__).parent / "results" / "synthetic_ablation.md"


def per_shot(
    parser: argparse.ArgumentParser, flag: str, values: list[int] | None, shots: list[int], defaults: dict[int, int]
) -> dict[int, int]:
    """``shot -> value`` from one value for all shots, one value per shot, or None (``defaults``,
    the 1-shot value for shots it does not list)."""
    if values is None:
        return {shot: defaults.get(shot, defaults[1]) for shot in shots}
    if len(values) == 1:
        return {shot: values[0] for shot in shots}
    if len(values) != len(shots):
        parser.error(f"{flag} takes one value or one per shot ({len(shots)}), got {len(values)}")
    return dict(zip(shots, values, strict=True))


def gap_line(summaries: list[VariantSummary], title: str) -> str:
    """With rows none, all and at least one of :data:`ORACLES`: the share of the gap between uniform
    frames and each oracle row that the full sampler closes (means over the seeds); else empty."""
    means = {s.name: s.accuracy for s in summaries}
    oracles = [name for name in ORACLES if name in means]
    if not {"none", "all"} <= means.keys() or not oracles:
        return ""
    gain = means["all"] - means["none"]
    shares = " and ".join(
        f"{100 * gain / (means[name] - means['none']):.0f}% of the gap to {name} ({means[name]:.1f})"
        for name in oracles
    )
    return f"{title}: the full sampler gains {gain:.1f} points over uniform frames and closes {shares}.\n"


def shot_folder(out: Path, shot: int, label: str | None) -> Path:
    """The comparison of one shot: ``OUT/<shot>shot``, or ``OUT/<shot>shot-LABEL`` for a candidate change."""
    return out / (f"{shot}shot-{label}" if label else f"{shot}shot")


def training_minutes(out: Path, rows: list[str], seeds: dict[int, int], label: str | None) -> float:
    """Training wall time in minutes of this invocation's runs (``rows`` x ``seeds[shot]`` seeds for each
    shot), reused ones included, from their results.json; other runs under ``out`` are not counted."""
    results = [
        run_folder(shot_folder(out, shot, label), row, seed) / "results.json"
        for shot, count in seeds.items() for row in rows for seed in range(count)
    ]
    return sum(json.loads(p.read_text()).get("elapsed_s", 0.0) for p in results if p.is_file()) / 60


def default_results(shots: list[int], label: str | None) -> Path:
    """The report unless ``--results`` says otherwise: synthetic_ablation.md for a run with 1-shot rows,
    synthetic_ablation_<shot>shot.md for one without (a 5-shot run never replaces the 1-shot table),
    each with ``_LABEL`` for a candidate change."""
    shot_words = "" if 1 in shots else "".join(f"_{shot}shot" for shot in shots)
    return report_path(RESULTS.with_name(f"{RESULTS.stem}{shot_words}{RESULTS.suffix}"), label)


def command(args: argparse.Namespace) -> str:
    """The command line that regenerates the report, paths as given (relative on a fresh checkout)."""
    words = ["python", "benchmarks/synthetic_ablation.py", "--out", str(args.out), "--shots", *map(str, args.shots)]
    budget = (("--episodes", args.episodes), ("--eval-episodes", args.eval_episodes), ("--seeds", args.seeds))
    for flag, values in budget:
        if values is not None:
            words += [flag, *map(str, values)]
    if args.rows != list(ABLATION):
        words += ["--rows", *args.rows]
    if args.set:
        words += ["--set", *args.set, "--label", args.label]
    words += side_by_side_words(args.jobs, args.threads)
    if args.results != default_results(args.shots, args.label):
        words += ["--results", str(args.results)]
    if args.note:
        words += ["--note", args.note]
    return shlex.join(words)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/synthetic_ablation"))
    parser.add_argument("--shots", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--episodes", type=int, nargs="+",
                        help=f"training episodes per row, one value or one per shot (default: {TRAIN_EPISODES})")
    parser.add_argument("--eval-episodes", type=int, nargs="+",
                        help=f"fixed test episodes, one value or one per shot (default: {TEST_EPISODES})")
    parser.add_argument("--seeds", type=int, nargs="+",
                        help=f"training seeds per row, one value or one per shot (default: {SEEDS})")
    parser.add_argument("--rows", nargs="+", default=list(ABLATION), choices=list(ABLATION))
    parser.add_argument("--workers", type=int, default=0, help="data-loading processes (0 suits a 2-core CPU)")
    add_side_by_side_options(parser)
    add_candidate_options(parser, "OUT/<shot>shot-LABEL")
    parser.add_argument("--note", default="", help="free text for the report, e.g. how the runs were trained")
    parser.add_argument(
        "--results", type=Path,
        help="the report (default: benchmarks/results/synthetic_ablation.md; "
        "synthetic_ablation_5shot.md for --shots 5; "
        "_LABEL before .md with --label)",
    )
    args = parser.parse_args()
    args.results = args.results or default_results(args.shots, args.label)
    episodes = per_shot(parser, "--episodes", args.episodes, args.shots, TRAIN_EPISODES)
    eval_episodes = per_shot(parser, "--eval-episodes", args.eval_episodes, args.shots, TEST_EPISODES)
    seeds = per_shot(parser, "--seeds", args.seeds, args.shots, SEEDS)
    candidate = candidate_change(parser, args)

    data_dir = args.out / "data"
    demo = DemoConfig()
    if not (data_dir / "metadata.json").is_file():
        generate_dataset(data_dir, demo.synth(), workers=2)
    load = os.getloadavg()
    variants = {row: ABLATION[row] for row in args.rows}
    sections = []
    start = time.perf_counter()
    for shot in args.shots:
        base = DemoConfig(shot=shot, episodes=episodes[shot], eval_episodes=eval_episodes[shot]).base_config(
            data_dir, args.workers
        )
        base = variant_config(base, base.name, args.set)
        title = (f"5-way {shot}-shot, {eval_episodes[shot]} fixed test episodes, {episodes[shot]} training episodes "
                 f"per run, {seeds[shot]} training seed{'s' * (seeds[shot] > 1)} per row")
        summaries, table = compare_and_report(
            base, variants, shot_folder(args.out, shot, args.label), eval_episodes[shot], seeds[shot], command(args),
            title=title, jobs=args.jobs, threads=args.threads,
        )
        print(table)
        sections += [table, gap_line(summaries, f"5-way {shot}-shot")]
    elapsed = time.perf_counter() - start
    ceiling = best_hit_rate(
        load_split(data_dir / "splits", "test", data_dir / "videos").items, load_metadata(data_dir),
        base.data.num_frames, base.sampler.num_frames,
    )
    minutes = training_minutes(args.out, args.rows, seeds, args.label)
    body = (
        f"Wall time of this invocation: {elapsed / 60:.1f} min; training time of all its runs (from their "
        f"results.json): {minutes:.1f} min. Data: the demo's synthetic actions ({demo.classes} "
        f"classes, {demo.videos_per_class} videos each, {demo.video_frames} frames at {demo.size} px); recipe "
        f"synthetic/sampler{candidate} (M={base.data.num_frames}, T={base.sampler.num_frames}, "
        f"{base.model.backbone} from "
        f"scratch, {base.model.head}). The best choice of T of the M scanned frames has {ceiling:.1f}% of its picks "
        "inside the event (each test video once): the temporal hit rate a learned selector can reach; the oracle "
        "takes its frames from the event itself.\n\n" + "\n".join(sections)
    )
    machine = machine_description(available_devices(), note=args.note, load=load)
    argv = shlex.split(command(args))[1:]  # without "python"
    write_report(args.results, markdown_report("Synthetic ablation", machine, body, argv=argv))


if __name__ == "__main__":
    main()
