"""Where a learned-sampler training step spends its time on the CPU synthetic recipe.

Runs a few optimiser steps of ``synthetic/sampler`` (the selector past its warm-up, as in most of a
run) with the library's own :func:`stsampler.engine.train.train_step`, and times each phase:

* data: drawing the step's episodes from the DataLoader (decoding, crop and flip, collation);
* the model's forward pass, split by hooks into the scanner (all M frames), the task learner,
  the selector's scores, the perturbed top-k (the rest of the selector), the saliency, the warp,
  the frame selection (the rest of the sampler), the backbone and the head;
* the loss, the backward pass (the step's time less everything else) and the optimiser step.

Then one more step under ``torch.profiler`` gives the operators that cost most, backward included;
a decoding micro-benchmark compares reading a training clip with
:func:`stsampler.data.video.read_frames` against :class:`stsampler.data.clip_cache.DecodedVideoCache`;
and ``synthetic/uniform`` steps on the same episodes give the baseline's step time. The report goes
to benchmarks/results/train_profile.md.

    OMP_NUM_THREADS=1 python benchmarks/train_profile.py --threads 1
    OMP_NUM_THREADS=1 python benchmarks/train_profile.py --threads 1 --set sampler.soft_saliency=false \
        --output benchmarks/results/train_profile_hard_saliency.md

``--set`` changes the learned-sampler recipe (KEY=VALUE overrides), to see what a change saves.

The data is the demo's synthetic dataset (``--data``; generated there when absent).
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import torch
from _common import machine_description, markdown_report, set_threads, write_report
from torch import nn

from stsampler.config import Config, load_config
from stsampler.data.clip_cache import DecodedVideoCache
from stsampler.data.episodes import EpisodeSampler
from stsampler.data.indices import segment_indices
from stsampler.data.synthetic import generate_dataset
from stsampler.data.video import probe_video, read_frames
from stsampler.demo import DemoConfig
from stsampler.engine.builder import build_dataset, build_model, resolve_split
from stsampler.engine.runtime import episode_loader
from stsampler.engine.train import build_optimizer, seed_everything, train_step
from stsampler.samplers.learned import STSampler


class PhaseClock:
    """Wall time per named phase, summed over calls (the CPU runs synchronously, so wall time is cost)."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self._open: dict[str, list[float]] = defaultdict(list)

    def start(self, name: str) -> None:
        self._open[name].append(time.perf_counter())

    def stop(self, name: str) -> None:
        self.totals[name] += time.perf_counter() - self._open[name].pop()

    def module(self, name: str, module: nn.Module | None) -> None:
        """Time every forward call of ``module`` under ``name`` (nothing when it is None)."""
        if module is not None:
            module.register_forward_pre_hook(lambda *_: self.start(name))
            module.register_forward_hook(lambda *_: self.stop(name))

    def method(self, name: str, owner: object | None, attribute: str) -> None:
        """Time calls of ``owner.attribute`` (a bound method, shadowed on the instance) under ``name``."""
        if owner is None:
            return
        inner: Callable = getattr(owner, attribute)

        def timed(*args, **kwargs):
            self.start(name)
            try:
                return inner(*args, **kwargs)
            finally:
                self.stop(name)

        setattr(owner, attribute, timed)

    def reset(self) -> None:
        self.totals.clear()


def instrument(model: nn.Module, optimizer: torch.optim.Optimizer, clock: PhaseClock) -> None:
    """Attach the clock to the recogniser's parts, its loss and the optimiser's step."""
    clock.module("forward", model)
    clock.module("sampler", model.sampler)
    clock.module("backbone", model.backbone)
    clock.module("head", model.head)
    clock.method("loss", model, "loss")
    if isinstance(model.sampler, STSampler):
        sampler = model.sampler
        clock.module("scanner", sampler.scanner)
        clock.module("task learner", sampler.task_learner)
        clock.module("selector", sampler.selector)
        clock.method("selector scores", sampler.selector, "score")
        clock.method("saliency", sampler.amplifier, "saliency")
        clock.module("warp", sampler.amplifier)
    optimizer.register_step_pre_hook(lambda *_: clock.start("optimizer step"))
    optimizer.register_step_post_hook(lambda *_: clock.stop("optimizer step"))


def setup(recipe: str, overrides: list[str]) -> tuple[Config, nn.Module, torch.optim.Optimizer, object]:
    """Config, model (train mode, selector past its warm-up), optimiser and an episode iterator."""
    cfg = load_config(recipe, overrides)
    split = resolve_split(cfg, "train")
    dataset = build_dataset(cfg, "train", train=True, split_data=split)
    seed_everything(cfg.train.seed)
    model = build_model(cfg, num_train_classes=len(split.classes))
    model.train()
    if isinstance(model.sampler, STSampler):
        model.sampler.explore = False
        model.sampler.sigma = cfg.sampler.sigma0
        model.sampler.generator = torch.Generator().manual_seed(cfg.train.seed)
    optimizer = build_optimizer(model, cfg.train)
    t = cfg.train
    episodes = EpisodeSampler(dataset.labels, t.way, t.shot, t.query, num_episodes=1000, seed=t.seed)
    loader = episode_loader(dataset, episodes, t.shot, cfg.data.workers, torch.device("cpu"), t.seed)
    return cfg, model, optimizer, iter(loader)


def run_steps(cfg: Config, model, optimizer, batches, steps: int, clock: PhaseClock | None) -> list[float]:
    """Time ``steps`` optimiser steps (data included); the clock, if given, splits them."""
    t = cfg.train
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        if clock is not None:
            clock.start("data")
        step_batches = [next(batches) for _ in range(t.tasks_per_batch)]
        if clock is not None:
            clock.stop("data")
        train_step(model, optimizer, step_batches, t.way, t.shot, torch.device("cpu"))
        times.append(time.perf_counter() - start)
    return times


def phase_table(totals: dict[str, float], step_total: float, episodes: int) -> str:
    """Markdown table of the phases: ms per episode and share of the step time; the parts of the
    sampler and of the selector, and the backward pass, are what the hooks leave over."""
    t = dict(totals)
    selector_rest = t.get("selector", 0.0) - t.get("selector scores", 0.0)
    sampler_parts = sum(t.get(k, 0.0) for k in ("scanner", "task learner", "selector", "saliency", "warp"))
    forward_parts = t.get("sampler", 0.0) + t.get("backbone", 0.0) + t.get("head", 0.0)
    rows = [
        ("data (decode, crop/flip, collate)", t.get("data", 0.0)),
        ("scanner forward (all M frames)", t.get("scanner", 0.0)),
        ("task learner", t.get("task learner", 0.0)),
        ("selector scores", t.get("selector scores", 0.0)),
        ("perturbed top-k (rest of the selector)", selector_rest),
        ("saliency", t.get("saliency", 0.0)),
        ("warp (amplifier)", t.get("warp", 0.0)),
        ("frame selection, rest of the sampler", t.get("sampler", 0.0) - sampler_parts),
        ("backbone forward", t.get("backbone", 0.0)),
        ("head, aux classifier, rest of the forward", t.get("forward", 0.0) - forward_parts),
        ("loss", t.get("loss", 0.0)),
        ("optimizer step", t.get("optimizer step", 0.0)),
    ]
    accounted = sum(value for _, value in rows)
    rows.append(("backward and the rest of the step", step_total - accounted))
    lines = ["| phase | ms per episode | share of the step |", "|---|---|---|"]
    lines += [
        f"| {name} | {1000 * value / episodes:.0f} | {100 * value / step_total:.1f}% |"
        for name, value in rows
        if value > 0
    ]
    return "\n".join(lines)


def profiled_ops(cfg: Config, model, optimizer, batches, top: int) -> str:
    """``torch.profiler``'s operator table (self CPU time) of one step."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run_steps(cfg, model, optimizer, batches, 1, None)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top)


def _ms(seconds: list[float]) -> float:
    return 1000 * statistics.fmean(seconds)


def decode_comparison(cfg: Config, clips: int) -> str:
    """Mean ms per training clip (M random frames, one per segment, decoded at the recipe's size):
    direct decoding against the decoded-video cache once warm, on the first ``clips`` videos."""
    items = resolve_split(cfg, "train").items[:clips]
    cache = DecodedVideoCache(budget_bytes=2**31)
    generator = torch.Generator().manual_seed(0)
    direct, cached, fill = [], [], []
    for item in items:
        info = probe_video(item.path)
        indices = segment_indices(info.num_frames, cfg.data.num_frames, random=True, generator=generator)
        start = time.perf_counter()
        expected = read_frames(item.path, indices, size=cfg.data.resize_short, info=info)
        direct.append(time.perf_counter() - start)
        start = time.perf_counter()
        cache.read(item.path, indices, cfg.data.resize_short, info)
        fill.append(time.perf_counter() - start)
        start = time.perf_counter()
        got = cache.read(item.path, indices, cfg.data.resize_short, info)
        cached.append(time.perf_counter() - start)
        assert torch.equal(got, expected)
    return (
        f"Decoding one training clip ({cfg.data.num_frames} frames at {cfg.data.resize_short} px, mean over "
        f"{len(items)} videos): read_frames {_ms(direct):.1f} ms; DecodedVideoCache first read (all frames) "
        f"{_ms(fill):.1f} ms, then {_ms(cached):.2f} ms per clip (identical frames). Held: "
        f"{cache.used_bytes / 2**20:.0f} MiB for {len(cache)} videos."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("runs/train_profile/data"))
    parser.add_argument("--steps", type=int, default=3, help="timed learned-sampler steps after one warm-up step")
    parser.add_argument("--uniform-steps", type=int, default=3)
    parser.add_argument("--top", type=int, default=15, help="operators listed from the profiled step")
    parser.add_argument("--clips", type=int, default=40, help="videos in the decoding comparison")
    parser.add_argument("--threads", type=int, help="torch intra-op threads")
    parser.add_argument(
        "--set", nargs="+", default=[], metavar="KEY=VALUE", help="overrides of the learned-sampler recipe"
    )
    parser.add_argument("--note", default="")
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "train_profile.md")
    args = parser.parse_args()
    set_threads(args.threads)
    demo = DemoConfig()
    if not (args.data / "metadata.json").is_file():
        generate_dataset(args.data, demo.synth(), workers=1)
    overrides = [
        f"data.split_dir={args.data / 'splits'}", f"data.data_root={args.data / 'videos'}", "data.workers=0",
    ]
    cfg, model, optimizer, batches = setup("synthetic/sampler", [*overrides, *args.set])
    run_steps(cfg, model, optimizer, batches, 1, None)  # warm-up: allocator, first-call overheads
    clock = PhaseClock()
    instrument(model, optimizer, clock)
    times = run_steps(cfg, model, optimizer, batches, args.steps, clock)
    episodes = args.steps * cfg.train.tasks_per_batch
    table = phase_table(clock.totals, sum(times), episodes)
    ops = profiled_ops(cfg, model, optimizer, batches, args.top)
    decode = decode_comparison(cfg, args.clips)
    ucfg, umodel, uoptimizer, ubatches = setup("synthetic/uniform", overrides)
    run_steps(ucfg, umodel, uoptimizer, ubatches, 1, None)
    uniform_times = run_steps(ucfg, umodel, uoptimizer, ubatches, args.uniform_steps, None)
    learned_rate = episodes / sum(times)
    uniform_rate = args.uniform_steps * ucfg.train.tasks_per_batch / sum(uniform_times)
    t, s = cfg.train, cfg.sampler
    recipe_overrides = f" with `{' '.join(args.set)}`" if args.set else ""
    body = (
        f"Recipe `synthetic/sampler`{recipe_overrides} "
        f"(M={cfg.data.num_frames} frames at {cfg.data.resize_short} px, T={s.num_frames}, "
        f"{t.way}-way {t.shot}-shot, {t.query} queries per class, {t.tasks_per_batch} episodes per step, "
        f"{s.num_samples} top-k samples, data loaded in the main process) on the demo's data "
        f"({demo.classes} classes x {demo.videos_per_class} videos, {demo.video_frames} frames at {demo.size} px); "
        f"the selector past its warm-up. {args.steps} timed steps after a warm-up step.\n\n"
        f"Learned sampler: {learned_rate:.3f} episodes/s ({1000 / learned_rate:.0f} ms per episode); "
        f"uniform frames (`synthetic/uniform`, same data, {args.uniform_steps} steps): {uniform_rate:.3f} "
        f"episodes/s.\n\n{table}\n\n{decode}\n\n"
        f"Operators of one more learned-sampler step (`torch.profiler`, self CPU time; profiling adds "
        f"overhead):\n\n```\n{ops}\n```\n"
    )
    machine = machine_description([torch.device("cpu")], args.note)
    write_report(args.output, markdown_report("Learned-sampler training step profile", f"Machine:\n\n{machine}", body))


if __name__ == "__main__":
    main()
