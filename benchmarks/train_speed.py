"""Learned-sampler training speed on the CPU synthetic recipe: the shipped recipe against the previous one.

Trains ``synthetic/sampler`` twice on the same data, side by side (two processes, one thread each,
started together, so both see the same machine load):

* ``before``: the recipe as it trained before its speed changes, restored by three overrides:
  the ShuffleNet-v2 scanner (``sampler.scanner_arch=shufflenet_v2_x0_5``, a network of its own:
  ``sampler.scanner_shares_backbone=false``), the saliency of all M
  scanned frames selected by the soft indicator (``sampler.experimental.soft_saliency=true``) and
  every training clip decoded from the file (``data.train_cache_mb=0``);
* ``after``: the recipe as shipped (the small-CNN scanner; saliency of the T hard-selected frames
  only; the training videos decoded once into memory).

Everything else is the shipped recipe in both runs, the fixed evaluator included: it is not a speed
change (the evaluator's forward is 2 ms of an 814-ms episode and the whole optimiser step 1 ms,
benchmarks/results/train_profile.md).

Both runs skip the selector warm-up (the selector works from the first episode, as in most of a
run) and validation, so the number is the training loop's: ``episodes_per_s`` from each run's
``results.json`` (episodes over the loop's wall time, decoding included). The table goes to
benchmarks/results/train_speed.md.

    python benchmarks/train_speed.py --episodes 64

The data is the demo's synthetic dataset (``--data``; generated there when absent).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from _common import machine_description, markdown_report, write_report

from stsampler.data.synthetic import generate_dataset
from stsampler.demo import DemoConfig

RECIPE = "synthetic/sampler"
VARIANTS = {
    "before": [
        "sampler.scanner_arch=shufflenet_v2_x0_5", "sampler.scanner_shares_backbone=false",
        "sampler.experimental.soft_saliency=true", "data.train_cache_mb=0",
    ],
    "after": [],
}


def run_side_by_side(data: Path, out: Path, episodes: int) -> dict[str, dict]:
    """Train every variant at once, one single-threaded process each; their ``results.json``."""
    shared = [
        f"data.split_dir={data / 'splits'}", f"data.data_root={data / 'videos'}",
        f"train.episodes={episodes}", f"train.val_every={episodes}", "train.val_episodes=0",
        f"train.ckpt_every={episodes}", "sampler.selector_warmup=0",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    processes = {}
    for name, overrides in VARIANTS.items():
        run_dir = out / name
        command = [sys.executable, "-m", "stsampler.cli", "train", RECIPE, *shared, *overrides]
        command += ["--run-dir", str(run_dir)]
        processes[name] = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    for name, process in processes.items():
        if process.wait() != 0:
            raise SystemExit(f"the {name} run failed (exit {process.returncode}); see {out / name / 'train.log'}")
    return {name: json.loads((out / name / "results.json").read_text()) for name in VARIANTS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("runs/train_speed/data"))
    parser.add_argument("--out", type=Path, default=Path("runs/train_speed/runs"))
    parser.add_argument("--episodes", type=int, default=64, help="training episodes per run")
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "train_speed.md")
    args = parser.parse_args()
    if not (args.data / "metadata.json").is_file():
        generate_dataset(args.data, DemoConfig().synth(), workers=os.cpu_count() or 1)
    if args.out.exists():
        raise SystemExit(f"{args.out} exists: remove it (or pass another --out) to time fresh runs")
    start = time.perf_counter()
    results = run_side_by_side(args.data, args.out, args.episodes)
    rate = {name: r["episodes_per_s"] for name, r in results.items()}
    rows = "\n".join(
        f"| {name} | {' '.join(overrides) or '(as shipped)'} | {rate[name]:.3f} | {rate[name] / rate['before']:.2f}x |"
        for name, overrides in VARIANTS.items()
    )
    body = (
        f"`{RECIPE}` on the demo's dataset, {args.episodes} training episodes per run, the two runs side by side "
        "(one thread each; the machine lines above describe the parent process), selector warm-up and validation "
        "off. The faster run finishes first and the other runs its last part alone on a quieter machine, so the "
        "ratio understates the speed-up of two runs that overlap throughout; the first episodes of `after` also "
        f"fill its cache (each training video decoded once, whole). Wall time {time.perf_counter() - start:.0f} s.\n\n"
        "| run | overrides | training episodes/s | speed-up |\n|---|---|---|---|\n" + rows + "\n"
    )
    report = markdown_report(
        "Learned-sampler training speed, before and after", machine_description([torch.device("cpu")]), body
    )
    print(report)
    write_report(args.output, report)


if __name__ == "__main__":
    main()
