"""Difficulty ladder: uniform frames, the full sampler and the oracle on synthetic actions of rising difficulty.

Each level is a set of ``stsampler synth`` flags. For each level asked for, the script

1. generates the level's dataset under ``OUT/<level>/data`` (skipped when its metadata.json exists),
   and measures its events from the metadata: length as a fraction of the video, and the area of
   the object's box at full size as a fraction of the frame;
2. runs ``stsampler compare`` on the shipped ``synthetic/sampler`` recipe (frames of the 128-px levels
   decoded at 128 and embedded at the recipe's 96, ``model.input_size``) with the variants uniform,
   sampler (the full sampler), oracle and oracle-clip (the event's frames cropped to each frame's
   event box, or to one box around the object in all of them), and on the hard level also sampler-2x
   (the full sampler trained on twice the recipe's episodes, the budget the hard level's target
   allows), 5-way 1-shot, over ``--seeds`` training seeds, into ``OUT/<level>/compare`` (its
   compare.md and compare.json);
3. writes benchmarks/results/ladder.md: per level, the event statistics, both commands (paths
   relative to the working directory) and the comparison's table, then the machine.

    python benchmarks/ladder.py --out runs/ladder                        # every level (hours on a CPU)
    python benchmarks/ladder.py --out runs/ladder --jobs 2 --threads 1   # two one-thread runs side by side
    python benchmarks/ladder.py --out runs/ladder --levels hard --data-only
    python benchmarks/ladder.py --out runs/ladder --set sampler.max_zoom=6 --label zoom6   # a candidate change

``--set`` measures a candidate change of the recipe on every level without touching the recipe's own
runs: its comparisons go to ``OUT/<level>/compare-LABEL``, beside ``compare``, on the same data, and
its report to benchmarks/results/ladder_LABEL.md unless ``--results`` says otherwise.
``--data-only`` stops after step 1 and writes the statistics and the commands it would run to
benchmarks/results/ladder_data.md instead.
"""
from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from _common import (
    add_candidate_options,
    candidate_change,
    machine_description,
    markdown_report,
    report_path,
    write_report,
)

from stsampler.cli import add_side_by_side_options, side_by_side_words
from stsampler.config import load_config
from stsampler.data.synthetic import load_metadata
from stsampler.demo import DemoConfig

RECIPE = "synthetic/sampler"
RECIPE_SIZE = load_config(RECIPE).data.crop_size
"""The side of the frames the recipe's recogniser embeds (and decodes, unless a level decodes larger)."""
VARIANTS = {
    "uniform": ["sampler.kind=uniform"],
    "sampler": ["sampler.kind=learned"],
    "sampler-2x": ["sampler.kind=learned", f"train.episodes={2 * load_config(RECIPE).train.episodes}"],
    "oracle": ["sampler.kind=oracle"],
    "oracle-clip": ["sampler.kind=oracle", "sampler.oracle_box=clip"],
}
STANDARD_VARIANTS = ("uniform", "sampler", "oracle", "oracle-clip")
RESULTS = Path(__file__).parent / "results"
TRAIN_CACHE_MB = 3072
"""Room for the ladder's training videos decoded at 128 px (about 2.3 GiB), so that training decodes each once."""


def default_level_elsewhere(label: str | None) -> str:
    """Where the default level's table is: the ablation's (of the same candidate change, with ``label``)."""
    table = report_path(Path("benchmarks/results/synthetic_ablation.md"), label)
    return (
        f"The default level's table is `{table}`: the same data (the demo's), recipe and training budget, whose "
        "rows none, all, oracle and oracle-clip are this script's uniform, sampler, oracle and oracle-clip.\n\n"
    )


@dataclass(frozen=True)
class Level:
    """One rung: its data (``stsampler synth`` flags, described in words), M, the frames the
    recipe scans per video (``data.num_frames``), the names of the :data:`VARIANTS` it compares, and
    the size its videos are decoded at when larger than the recipe's (``decoded_size``: the amplifier then
    magnifies from frames of the videos' own size, while the recogniser's input stays the recipe's)."""

    description: str
    synth: tuple[str, ...]
    dense_frames: int = 32
    variants: tuple[str, ...] = STANDARD_VARIANTS
    decoded_size: int | None = None


def _default_flags() -> tuple[str, ...]:
    """The dataset the demo and benchmarks/synthetic_ablation.py generate, as synth flags."""
    demo = DemoConfig()
    return (
        "--classes", str(demo.classes), "--videos-per-class", str(demo.videos_per_class),
        "--frames", str(demo.video_frames), "--size", str(demo.size), "--seed", str(demo.seed),
    )


_LADDER_FORMAT = ("--classes", "40", "--videos-per-class", "20", "--frames", "96", "--size", "128")
LEVELS = {
    "default": Level(
        "the demo's and the ablation's data: 25 classes x 10 clips, 48 frames at 96 px, events 10-20% "
        "of the frames, the object's half-size 70-100% of what a box of 10% of the frame allows",
        _default_flags(),
    ),
    "medium": Level(
        "40 classes x 20 clips, 96 frames at 128 px, events 12-20% of the frames, the object's box "
        "3-5% of the frame",
        (*_LADDER_FORMAT, "--event-fraction", "0.12", "0.2", "--event-area", "0.03", "0.05"),
        decoded_size=128,
    ),
    "hard": Level(
        "40 classes x 20 clips, 96 frames at 128 px, events 10-15% of the frames, the object's box "
        "1-1.5% of the frame",
        (*_LADDER_FORMAT, "--event-fraction", "0.1", "0.15", "--event-area", "0.01", "0.015"),
        decoded_size=128,
        variants=("uniform", "sampler", "sampler-2x", "oracle", "oracle-clip"),
    ),
}


def stsampler_command(args: list[str]) -> list[str]:
    """The ``stsampler`` command line ``args`` as run by this Python (the package need not be installed)."""
    return [sys.executable, "-m", "stsampler.cli", *args]


def shown(args: list[str]) -> str:
    """``stsampler ARGS``, shell-quoted, as a reader would type it."""
    return shlex.join(["stsampler", *args])


def synth_args(level: Level, data_dir: str, workers: int) -> list[str]:
    """``stsampler synth`` arguments writing the level's dataset to ``data_dir``."""
    return ["synth", data_dir, *level.synth, "--workers", str(workers)]


def compare_args(
    level: Level, data_dir: str, out_dir: str, seeds: int, episodes: int, side_by_side: Sequence[str] = (),
    recipe_overrides: Sequence[str] = (),
) -> list[str]:
    """``stsampler compare`` arguments: the level's data and ``recipe_overrides`` (a candidate change of
    the recipe) as shared overrides (they precede the variants, each of which takes the ``KEY=VALUE``
    words after its name), then the variants, then the ``side_by_side`` words
    (:func:`stsampler.cli.side_by_side_words`)."""
    variants = [part for name in level.variants for part in ("--variant", name, *VARIANTS[name])]
    shared = [
        f"data.split_dir={data_dir}/splits", f"data.data_root={data_dir}/videos",
        f"data.metadata={data_dir}/metadata.json", f"data.num_frames={level.dense_frames}",
    ]
    if level.decoded_size is not None:
        shared += [
            f"data.resize_short={level.decoded_size}", f"data.crop_size={level.decoded_size}",
            f"model.input_size={RECIPE_SIZE}",
            f"data.train_cache_mb={TRAIN_CACHE_MB}",
        ]
    shared += recipe_overrides
    return [
        "compare", RECIPE, *shared, *variants, "--seeds", str(seeds), "--episodes", str(episodes), "--out", out_dir,
        *side_by_side,
    ]


def _spread(values: list[float]) -> str:
    """``mean (min-max)`` of percentages."""
    return f"{statistics.fmean(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def event_stats(metadata: dict) -> str:
    """A Markdown table of the events' length (% of the video's frames), the full-size box's area
    and the mean box area over the event frames (% of the frame): mean (min-max) over the videos."""
    lengths, full, mean_area = [], [], []
    for video in metadata["videos"].values():
        frame = video["width"] * video["height"]
        areas = [(x1 - x0) * (y1 - y0) / frame for x0, y0, x1, y1 in video["boxes"]]
        lengths.append(100 * (video["event_end"] - video["event_start"]) / video["num_frames"])
        full.append(100 * max(areas))
        mean_area.append(100 * statistics.fmean(areas))
    return "\n".join([
        "| videos | event length (% of frames) | box at full size (% of frame) "
        "| box, mean over the event (% of frame) |",
        "|---|---|---|---|",
        f"| {len(lengths)} | {_spread(lengths)} | {_spread(full)} | {_spread(mean_area)} |",
    ])


def demote(markdown: str) -> str:
    """``markdown`` with every heading two levels down, to sit under a level's ``##`` heading."""
    return "\n".join(f"##{line}" if line.startswith("#") else line for line in markdown.splitlines())


def run_level(name: str, level: Level, args: argparse.Namespace) -> str:
    """Generate (if absent) and, unless ``--data-only``, compare one level; its Markdown section."""
    root = Path(os.path.relpath(args.out / name))
    compare_name = f"compare-{args.label}" if args.label else "compare"
    data_dir, compare_dir = (root / "data").as_posix(), (root / compare_name).as_posix()
    synth = synth_args(level, data_dir, args.workers)
    if not (root / "data" / "metadata.json").is_file():
        subprocess.run(stsampler_command(synth), check=True)
    compare = compare_args(
        level, data_dir, compare_dir, args.seeds, args.episodes, side_by_side_words(args.jobs, args.threads),
        args.set,
    )
    decoding = "" if level.decoded_size is None else (
        f" Frames decoded at {level.decoded_size} px, the videos' size, and embedded at the recipe's "
        f"{RECIPE_SIZE} px (`model.input_size`): the amplifier magnifies from the "
        "sharper frames."
    )
    lines = [
        f"## {name}", "", f"Data: {level.description}.{decoding}", "", f"`{shown(synth)}`", "",
        event_stats(load_metadata(root / "data")), "", f"`{shown(compare)}`", "",
    ]
    if not args.data_only:
        subprocess.run(stsampler_command(compare), check=True)
        table = (root / compare_name / "compare.md").read_text(encoding="utf-8").strip()
        lines += [demote(table), ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/ladder"))
    parser.add_argument("--levels", nargs="+", default=list(LEVELS), choices=list(LEVELS))
    parser.add_argument("--seeds", type=int, default=3, help="training seeds per variant (default: %(default)s)")
    parser.add_argument(
        "--episodes", type=int, default=300, help="fixed 5-way 1-shot test episodes (default: %(default)s)"
    )
    parser.add_argument("--workers", type=int, default=1, help="processes generating videos (default: %(default)s)")
    add_side_by_side_options(parser)
    add_candidate_options(parser, "OUT/<level>/compare-LABEL")
    parser.add_argument("--data-only", action="store_true", help="generate and measure the data; train nothing")
    parser.add_argument(
        "--results", type=Path,
        help="report file (default: results/ladder.md, ladder_data.md with --data-only, ladder_LABEL.md with --label)",
    )
    args = parser.parse_args()
    candidate = candidate_change(parser, args)
    sections = [run_level(name, LEVELS[name], args) for name in args.levels]
    machine = machine_description([torch.device("cpu")])
    title = "Difficulty ladder: event statistics" if args.data_only else "Difficulty ladder"
    longer = [name for name, level in LEVELS.items() if "sampler-2x" in level.variants]
    body = (
        f"Recipe `{RECIPE}`{candidate} (5-way 1-shot) with the variants "
        + ", ".join(f"{name} (`{' '.join(overrides)}`)" for name, overrides in VARIANTS.items())
        + "; the level's data (and the size its frames are decoded at) as shared overrides. "
        + f"sampler-2x runs on the {' and '.join(longer)} level only, "
        "where the sampler is held to closing half the uniform-to-oracle gap within twice the uniform run's "
        "training episodes. Box areas are of the object's pixel box recorded in each video's metadata.\n\n"
        + ("" if "default" in args.levels else default_level_elsewhere(args.label))
        + "\n".join(sections)
    )
    results = args.results or report_path(RESULTS / ("ladder_data.md" if args.data_only else "ladder.md"), args.label)
    write_report(results, markdown_report(title, f"Machine:\n\n{machine}", body))


if __name__ == "__main__":
    main()
