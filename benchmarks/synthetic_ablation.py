"""The paper's ablation on synthetic actions: which sampler components help, against uniform and the oracle.

Rows: none (uniform frames), TS, SA, TS+SA, TS+ada, SA+ada, all (TS+SA+ada), and the oracle
(the event's frames cropped to its box: the upper bound). Each is trained on the same data, backbone
and episode budget and evaluated on the same fixed test episodes, in 5-way 1-shot and 5-shot.
Columns: accuracy with its 95% interval, temporal hit rate (selected frames inside the event span),
magnification of the event box. The table and the command go to benchmarks/results/.

    python benchmarks/synthetic_ablation.py --out runs/ablation     # full size (2 h on 2 CPU cores)
    python benchmarks/synthetic_ablation.py --out runs/ablation --shots 1 --rows none all oracle

``--episodes`` and ``--eval-episodes`` take one value for every shot or one per shot. By default
1-shot rows train for the demo's 320 episodes and are tested on its 300 episodes; 5-shot rows train
for 100 episodes and are tested on 100: a 5-shot episode holds 30 videos against 10, so each row
sees about as many training videos in both tables.
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import torch
from _common import cpu_model, markdown_report, write_report

from stsampler.demo import DemoConfig
from stsampler.data.synthetic import generate_dataset, load_metadata
from stsampler.engine.compare import compare, format_table, results_json
from stsampler.io import atomic_write_text

ABLATION = {
    "none": ["sampler.kind=uniform"],
    "TS": ["sampler.kind=learned", "sampler.temporal=true", "sampler.spatial=false", "sampler.task_adaptive=false"],
    "SA": ["sampler.kind=learned", "sampler.temporal=false", "sampler.spatial=true", "sampler.task_adaptive=false"],
    "TS+SA": ["sampler.kind=learned", "sampler.temporal=true", "sampler.spatial=true", "sampler.task_adaptive=false"],
    "TS+ada": ["sampler.kind=learned", "sampler.temporal=true", "sampler.spatial=false", "sampler.task_adaptive=true"],
    "SA+ada": ["sampler.kind=learned", "sampler.temporal=false", "sampler.spatial=true", "sampler.task_adaptive=true"],
    "all": ["sampler.kind=learned", "sampler.temporal=true", "sampler.spatial=true", "sampler.task_adaptive=true"],
    "oracle": ["sampler.kind=oracle"],
}
TRAIN_EPISODES = {1: DemoConfig.episodes, 5: 100}
TEST_EPISODES = {1: DemoConfig.eval_episodes, 5: 100}


def machine() -> str:
    """CPU model; the GPU, else the torch threads; torch and Python versions, on one line."""
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU only, {torch.get_num_threads()} threads"
    return f"{cpu_model()}; {device}; torch {torch.__version__}; Python {platform.python_version()}"


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
    return dict(zip(shots, values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/synthetic_ablation"))
    parser.add_argument("--shots", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--episodes", type=int, nargs="+",
                        help=f"training episodes per row, one value or one per shot (default: {TRAIN_EPISODES})")
    parser.add_argument("--eval-episodes", type=int, nargs="+",
                        help=f"fixed test episodes, one value or one per shot (default: {TEST_EPISODES})")
    parser.add_argument("--rows", nargs="+", default=list(ABLATION), choices=list(ABLATION))
    parser.add_argument("--workers", type=int, default=0, help="data-loading processes (0 suits a 2-core CPU)")
    parser.add_argument("--results", type=Path, default=Path(__file__).parent / "results" / "synthetic_ablation.md")
    args = parser.parse_args()
    episodes = per_shot(parser, "--episodes", args.episodes, args.shots, TRAIN_EPISODES)
    eval_episodes = per_shot(parser, "--eval-episodes", args.eval_episodes, args.shots, TEST_EPISODES)

    data_dir = args.out / "data"
    demo = DemoConfig()
    if not (data_dir / "metadata.json").is_file():
        generate_dataset(data_dir, demo.synth(), workers=os.cpu_count() or 1)
    metadata = load_metadata(data_dir)
    variants = {row: ABLATION[row] for row in args.rows}
    sections = []
    start = time.perf_counter()
    for shot in args.shots:
        size = DemoConfig(episodes=episodes[shot], eval_episodes=eval_episodes[shot], shot=shot)
        base = size.base_config(data_dir, args.workers)
        overrides = [f"data.metadata={data_dir / 'metadata.json'}"]
        shot_variants = {name: [*ov, *overrides] for name, ov in variants.items()}
        results = compare(base, shot_variants, args.out / f"{shot}shot", eval_episodes[shot], metadata=metadata)
        title = f"5-way {shot}-shot, {eval_episodes[shot]} fixed test episodes, {episodes[shot]} training episodes per row"
        table = format_table(results, title)
        print(table)
        sections.append(table)
        atomic_write_text(args.out / f"{shot}shot" / "results.json", results_json(results))
    elapsed = time.perf_counter() - start
    body = (
        f"Wall time: {elapsed / 60:.1f} min. Data: the demo's synthetic actions ({demo.classes} classes, "
        f"{demo.videos_per_class} videos each, {demo.video_frames} frames at {demo.size} px; M={demo.dense_frames}, "
        f"T={demo.selected_frames}); small CNN from scratch, ProtoNet.\n\n" + "\n".join(sections)
    )
    write_report(args.results, markdown_report("Synthetic ablation", f"Machine: {machine()}", body))


if __name__ == "__main__":
    main()
