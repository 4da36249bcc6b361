"""What does an untrained selector pick? Hit rate of each scorer at initialisation, per training seed.

For each training seed the recipe's model is built exactly as ``stsampler train`` builds it (seeded
the same way), and its sampler, untrained and in evaluation mode, scores the M scanned frames of
fixed training videos of a synthetic dataset. The table gives, per seed and per scorer, the temporal
hit rate of the top-T frames (the fraction inside the event; T of M at random gives about the
event's share of the frames, printed above the table):

- ``evaluator``: the recipe's sampler with ``sampler.scorer=evaluator`` (the paper's MLP, position
  encoding scaled by ``sampler.experimental.pe_scale``, 0.1 by default);
- ``evaluator, no position encoding``: the same with ``pe_scale=0``;
- ``distance``: ``sampler.scorer=distance`` (the recipe's: the distance of a frame's scan feature
  from the video's mean, ``docs/method.md`` section 2.3).

    python benchmarks/ladder.py --out runs/ladder --levels hard --data-only   # the hard level's data
    python benchmarks/scorer_init.py --data runs/ladder/hard/data --seeds 12

The report goes to benchmarks/results/scorer_init.md with its command and the machine.
"""
from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch
from _common import machine_description, markdown_report, set_threads, write_report
from selector_probe import RECIPE, training_data

from stsampler.config import load_config
from stsampler.data.transforms import normalize
from stsampler.engine.builder import build_model
from stsampler.engine.train import seed_everything

SCORERS = {
    "evaluator": ["sampler.scorer=evaluator"],
    "evaluator, no position encoding": ["sampler.scorer=evaluator", "sampler.experimental.pe_scale=0"],
    "distance": ["sampler.scorer=distance"],
}


def hit_rates(data: Path, seeds: int, videos: int) -> tuple[float, dict[str, list[float]]]:
    """(the event's share of the scanned frames, ``scorer -> hit rate % per seed``) on ``videos`` fixed
    training videos of the dataset at ``data``."""
    dataset, spans = training_data(data)
    index = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))[:videos]
    items = [dataset[i] for i in index.tolist()]
    clips = normalize(torch.stack([item["frames"] for item in items]))
    frames = torch.stack([item["frame_indices"] for item in items])
    inside = (frames >= spans[index, :1]) & (frames < spans[index, 1:])
    rates: dict[str, list[float]] = {name: [] for name in SCORERS}
    for name, overrides in SCORERS.items():
        cfg = load_config(RECIPE, [f"data.split_dir={data / 'splits'}", f"data.data_root={data / 'videos'}",
                                   *overrides])
        for seed in range(seeds):
            seed_everything(seed)
            sampler = build_model(cfg, dataset.num_classes).sampler.eval()
            with torch.inference_mode():
                chosen = sampler.plan(clips, torch.ones(len(items), dtype=torch.bool)).indices
            rates[name].append(100 * inside.gather(1, chosen).float().mean().item())
    return 100 * inside.float().mean().item(), rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="a dataset written by `stsampler synth`")
    parser.add_argument("--seeds", type=int, default=12, help="training seeds 0..S-1")
    parser.add_argument("--videos", type=int, default=96, help="fixed training videos scored")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "scorer_init.md")
    args = parser.parse_args()
    set_threads(args.threads)
    share, rates = hit_rates(args.data, args.seeds, args.videos)
    lines = ["| scorer | " + " | ".join(f"seed {s}" for s in range(args.seeds)) + " | min-max | mean |",
             "|---|" + "---|" * (args.seeds + 2)]
    for name, values in rates.items():
        cells = " | ".join(f"{v:.1f}" for v in values)
        lines.append(f"| {name} | {cells} | {min(values):.1f}-{max(values):.1f} | {statistics.mean(values):.1f} |")
    body = (
        f"Temporal hit rate (%) of the untrained selector's top-T frames, recipe `{RECIPE}`, data "
        f"`{args.data.as_posix()}`, {args.videos} fixed training videos; the event holds {share:.1f}% of the "
        "scanned frames (what T random frames would hit).\n\n" + "\n".join(lines) + "\n"
    )
    write_report(args.output, markdown_report("What an untrained selector picks: each scorer at initialisation",
                                              f"Machine:\n\n{machine_description([torch.device('cpu')])}", body))
    print(body)


if __name__ == "__main__":
    main()
