"""Can the selector find the event before the recogniser works? A probe without the recogniser.

Trains only the sampler's scanner and temporal selector, plus a linear classifier over the training
classes, on a synthetic dataset's training split (16 videos of M frames per step, AdamW), with one
of these training signals, and reports the temporal hit rate of the selector's top-T frames (the
fraction inside the event; T of M at random gives about the event's share of the frames):

- ``mean``: classify the mean of the M scan features (trains the scanner; nothing trains the
  selector, whose hit rate shows what an untrained scorer picks on those features);
- ``attention``: classify the scan features pooled by ``softmax(scores / 0.1)`` (trains scanner and
  selector: the signal a classifier gives a selector that decides what it looks at).

    python benchmarks/ladder.py --out runs/ladder --levels hard --data-only   # the hard level's data
    python benchmarks/selector_probe.py --data runs/ladder/hard/data --steps 120

Each signal trains from the same initial weights on the same videos. The report goes to
benchmarks/results/selector_probe.md with its command and the machine.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from _common import machine_description, markdown_report, set_threads, write_report
from torch import nn

from stsampler.config import load_config
from stsampler.data.dataset import VideoDataset
from stsampler.data.events import event_table
from stsampler.data.synthetic import load_metadata
from stsampler.data.transforms import normalize
from stsampler.engine.builder import build_dataset
from stsampler.samplers.learned import STSampler

SIGNALS = ("mean", "attention")
SCORE_TEMPERATURE = 0.1
"""Softmax temperature of the attention over the selector's scores in [0, 1]."""
RECIPE = "synthetic/sampler"
SAMPLER = [
    "sampler.scanner_arch=shufflenet_v2_x0_5", "sampler.scanner_shares_backbone=false", "sampler.evaluator_learns=true"
]
"""The probe's scanner and selector: the ShuffleNet scanner and a learning evaluator, the setting in which
the hard level's selector learned to look away from the event (the recipe now scans with the small CNN
and keeps the evaluator fixed, ``docs/method.md`` section 9)."""
BATCH = 16


def signal_loss(
    signal: str, features: torch.Tensor, scores: torch.Tensor, classifier: nn.Module, labels: torch.Tensor
) -> torch.Tensor:
    """The probe's loss for scan features ``[B, M, D]``, scores ``[B, M]`` and video labels ``[B]``."""
    if signal == "attention":
        pooled = torch.einsum("bm,bmd->bd", torch.softmax(scores / SCORE_TEMPERATURE, dim=1), features)
        return F.cross_entropy(classifier(pooled), labels)
    return F.cross_entropy(classifier(features.mean(dim=1)), labels)


def training_data(data: Path) -> tuple[VideoDataset, torch.Tensor]:
    """The training split of the dataset at ``data`` as the recipe decodes it (kept in memory, so every
    signal reuses the decoded videos) and its event spans ``[n, 2]``."""
    cfg = load_config(RECIPE, [
        f"data.split_dir={data / 'splits'}", f"data.data_root={data / 'videos'}", "data.train_cache_mb=2048",
    ])
    dataset = build_dataset(cfg, "train", True)
    return dataset, event_table(dataset.items, load_metadata(data))[0]


def probe(
    signal: str, dataset: VideoDataset, spans: torch.Tensor, args: argparse.Namespace
) -> list[tuple[int, float, float]]:
    """Train with ``signal`` from the recipe's sampler and optimiser settings; (step, mean loss, hit rate %)
    over each window of ``--every`` steps."""
    cfg = load_config(RECIPE, SAMPLER)
    torch.manual_seed(args.seed)
    sampler = STSampler.from_config(cfg.sampler).train()
    classifier = nn.Linear(sampler.feature_dim, dataset.num_classes)
    params = [*sampler.scanner.parameters(), *sampler.selector.parameters(), *classifier.parameters()]
    optimizer = torch.optim.AdamW(params, lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    draws = torch.Generator().manual_seed(args.seed)
    rows, losses, hits = [], [], []
    for step in range(1, args.steps + 1):
        index = torch.randint(len(dataset), (BATCH,), generator=draws)
        items = [dataset[i] for i in index.tolist()]
        clips = normalize(torch.stack([item["frames"] for item in items]))
        labels = torch.tensor([item["label"] for item in items])
        features, video_feature, _ = sampler.scan(clips)
        scores = sampler.selector.score(features, video_feature)
        loss = signal_loss(signal, features, scores, classifier, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        frames = torch.stack([item["frame_indices"] for item in items]).gather(
            1, scores.topk(cfg.sampler.num_frames, dim=1).indices
        )
        inside = (frames >= spans[index, :1]) & (frames < spans[index, 1:])
        losses.append(loss.item())
        hits.append(inside.float().mean().item())
        if step % args.every == 0:
            rows.append((step, sum(losses) / len(losses), 100 * sum(hits) / len(hits)))
            print(f"{signal}: step {step} loss {rows[-1][1]:.3f} hit rate {rows[-1][2]:.1f}%", flush=True)
            losses, hits = [], []
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="a dataset written by `stsampler synth`")
    parser.add_argument("--signals", nargs="+", default=list(SIGNALS), choices=SIGNALS)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--every", type=int, default=30, help="steps per reported window")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "selector_probe.md")
    args = parser.parse_args()
    set_threads(args.threads)
    start = time.perf_counter()
    dataset, spans = training_data(args.data)
    results = {signal: probe(signal, dataset, spans, args) for signal in args.signals}
    steps = [step for step, _, _ in next(iter(results.values()))]
    header = "| signal | " + " | ".join(f"steps {s - args.every + 1}-{s}" for s in steps) + " |"
    lines = [header, "|---|" + "---|" * len(steps)]
    for signal, rows in results.items():
        lines.append(f"| {signal} | " + " | ".join(f"{hit:.1f}% ({loss:.2f})" for _, loss, hit in rows) + " |")
    body = (
        f"Temporal hit rate of the selector's top-T frames over each window of training steps (mean loss "
        f"in brackets), recipe `{RECIPE}`, data `{args.data.as_posix()}`, {BATCH} training videos per step, seed "
        f"{args.seed}. Wall time {(time.perf_counter() - start) / 60:.1f} min.\n\n" + "\n".join(lines) + "\n"
    )
    machine = machine_description([torch.device("cpu")])
    write_report(args.output, markdown_report("Selector probe: what teaches the selector where the event is",
                                              f"Machine:\n\n{machine}", body))
    print(body)


if __name__ == "__main__":
    main()
