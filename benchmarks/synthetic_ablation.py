"""The paper's ablation on synthetic actions: which sampler components help, against uniform and the oracle.

Rows: none (uniform frames), TS, SA, TS+SA, TS+ada, SA+ada, all (TS+SA+ada), and the oracle
(the event's frames cropped to its box: the upper bound). Each is trained on the same data, backbone
and episode budget and evaluated on the same fixed test episodes, in 5-way 1-shot and 5-shot.
Columns: accuracy with its 95% interval, temporal hit rate (selected frames inside the event span),
magnification of the event box. The table and the command go to benchmarks/results/.

    python benchmarks/synthetic_ablation.py --out runs/ablation            # full size (hours on 2 CPU cores)
    python benchmarks/synthetic_ablation.py --out runs/ablation --episodes 200 --eval-episodes 200 --shots 1
"""
from __future__ import annotations

import argparse
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


def machine() -> str:
    """CPU model; the GPU, else the torch threads; torch and Python versions, on one line."""
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU only, {torch.get_num_threads()} threads"
    return f"{cpu_model()}; {device}; torch {torch.__version__}; Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/synthetic_ablation"))
    parser.add_argument("--episodes", type=int, default=DemoConfig.episodes, help="training episodes per row")
    parser.add_argument("--eval-episodes", type=int, default=DemoConfig.eval_episodes)
    parser.add_argument("--shots", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--rows", nargs="+", default=list(ABLATION), choices=list(ABLATION))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--results", type=Path, default=Path(__file__).parent / "results" / "synthetic_ablation.md")
    args = parser.parse_args()

    data_dir = args.out / "data"
    demo = DemoConfig(episodes=args.episodes, eval_episodes=args.eval_episodes)
    if not (data_dir / "metadata.json").is_file():
        generate_dataset(data_dir, demo.synth(), workers=args.workers)
    metadata = load_metadata(data_dir)
    variants = {row: ABLATION[row] for row in args.rows}
    sections = []
    start = time.perf_counter()
    for shot in args.shots:
        base = DemoConfig(episodes=args.episodes, eval_episodes=args.eval_episodes, shot=shot).base_config(data_dir, args.workers)
        overrides = [f"data.metadata={data_dir / 'metadata.json'}"]
        shot_variants = {name: [*ov, *overrides] for name, ov in variants.items()}
        results = compare(base, shot_variants, args.out / f"{shot}shot", args.eval_episodes, metadata=metadata)
        table = format_table(results, f"5-way {shot}-shot, {args.eval_episodes} fixed test episodes, {args.episodes} training episodes per row")
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
