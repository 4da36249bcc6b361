"""Benchmark: what the learned sampler adds on top of the recognition backbone.

Setting of the paper: ResNet-50 (torchvision, random init, classifier removed) embeds T = 8 frames
at 224 x 224 per video; the baseline takes the uniform segment centres of the M = 16 dense frames,
STSampler scans all 16 at 64 x 64, selects 8 and amplifies them. B videos, the first one support.

FLOPs: ``torch.utils.flop_counter.FlopCounterMode`` over one forward pass in evaluation mode.
Forward only: the counter overcounts the backward of grouped convolutions (ShuffleNet-v2's
depthwise convolutions). It counts matrix products and convolutions; element-wise work,
interpolation and ``grid_sample`` are not counted. The sampler's FLOPs are split into the scanner,
the selector, the task learner and the rest (mostly the "paper" saliency's channel attention).

Time: best wall time over interleaved rounds (so load changes hit every run alike) of the
evaluation forward (``inference_mode``) and of the training forward + backward: backbone alone
(uniform frames), sampler + backbone, and each learned sampler alone.

Usage: ``python benchmarks/sampler_overhead.py [--videos 2] [--repeats 3] [--output FILE]``
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from _common import best_times, machine_description, markdown_report, publish, set_threads, timing_parser
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models import resnet50

from stsampler.config import SamplerConfig, SamplerExperiments
from stsampler.samplers.base import FrameSampler
from stsampler.samplers.baselines import UniformSampler
from stsampler.samplers.learned import STSampler

DENSE, SELECTED, SIZE = 16, 8, 224


def build_backbone() -> nn.Module:
    """ResNet-50, random init, ``[N, 3, 224, 224] -> [N, 2048]``, channels_last."""
    net = resnet50()
    net.fc = nn.Identity()
    return net.to(memory_format=torch.channels_last)


def pipeline(
    sampler: FrameSampler, backbone: nn.Module | None, clips: torch.Tensor, is_support: torch.Tensor
) -> torch.Tensor:
    """Sample, then embed the selected frames (the part of the recogniser the sampler changes).

    Without a backbone, the sampler alone: a scalar of its frames and video feature.
    """
    out = sampler(clips, is_support)
    if backbone is None:
        feature = out.video_feature.mean() if out.video_feature is not None else 0.0
        return out.frames.mean() + feature
    embedding = backbone(out.frames.flatten(0, 1).contiguous(memory_format=torch.channels_last))
    return embedding.mean()


def forward_flops(fn: Callable[[], object]) -> tuple[int, dict[str, int]]:
    """Total forward FLOPs of ``fn`` and the FLOPs per top-level module name."""
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        fn()
    per_module = {name: sum(counts.values()) for name, counts in counter.get_flop_counts().items()}
    return counter.get_total_flops(), per_module


def run(videos: int, repeats: int) -> list[str]:
    """Markdown lines: a FLOPs table and a timing table."""
    torch.manual_seed(0)
    device = torch.device("cpu")
    clips = torch.randn(videos, DENSE, 3, SIZE, SIZE)
    is_support = torch.arange(videos) == 0
    backbone = build_backbone()
    samplers: dict[str, FrameSampler] = {
        "uniform": UniformSampler(SELECTED),
        "STSampler (paper saliency)": STSampler.from_config(_sampler_config(saliency="paper")),
        "STSampler (code saliency, not task-adaptive)": STSampler.from_config(
            _sampler_config(saliency="code", task_adaptive=False)
        ),
    }

    def evaluate(sampler: FrameSampler, net: nn.Module | None) -> Callable[[], None]:
        def fn() -> None:
            sampler.eval()
            backbone.eval()
            with torch.inference_mode():
                pipeline(sampler, net, clips, is_support)

        return fn

    def train_step(sampler: FrameSampler, net: nn.Module | None) -> Callable[[], None]:
        def fn() -> None:
            sampler.train()
            backbone.train()
            pipeline(sampler, net, clips, is_support).backward()

        return fn

    base_name = next(iter(samplers))
    runs = {
        (name, net is None): (s, net)
        for name, s in samplers.items()
        for net in (backbone, None)
        if net is not None or name != base_name
    }
    eval_times = best_times({key: evaluate(*run) for key, run in runs.items()}, device, repeats)
    train_times = best_times({key: train_step(*run) for key, run in runs.items()}, device, repeats)
    base_eval, base_train = eval_times[(base_name, False)], train_times[(base_name, False)]
    time_rows = []
    for (name, alone), _ in runs.items():
        t_eval, t_train = eval_times[(name, alone)], train_times[(name, alone)]
        added_eval = t_eval if alone else t_eval - base_eval
        added_train = t_train if alone else t_train - base_train
        label = f"{name}, sampler alone" if alone else f"{name} + ResNet-50"
        time_rows.append(
            f"| {label} | {t_eval * 1e3:.0f} | {100 * added_eval / base_eval:+.1f}% | "
            f"{t_train * 1e3:.0f} | {100 * added_train / base_train:+.1f}% |"
        )

    flop_rows = []
    base_flops = 0
    for name, sampler in samplers.items():
        sampler.eval()
        backbone.eval()
        total, per_module = forward_flops(lambda sampler=sampler: pipeline(sampler, backbone, clips, is_support))
        base_flops = base_flops or total
        sampler_flops = total - per_module.get("ResNet", 0)
        parts = [per_module.get(f"STSampler.{part}", 0) for part in ("scanner", "selector", "task_learner")]
        rest = sampler_flops - sum(parts)
        flop_rows.append(
            f"| {name} | {total / 1e9:.2f} | {sampler_flops / 1e9:.3f} | "
            + " | ".join(f"{v / 1e9:.3f}" for v in (*parts, rest))
            + f" | {100 * (total - base_flops) / base_flops:+.1f}% |"
        )
    return [
        f"B = {videos} videos, M = {DENSE} dense frames at {SIZE} x {SIZE}, T = {SELECTED}, "
        "ResNet-50 at 224 (random init), scanner ShuffleNet-v2 x0.5 at 64 x 64, 500 noise samples.",
        "",
        "Forward FLOPs in evaluation mode (GFLOP, one multiply-add = 2 FLOPs):",
        "",
        "| sampler before ResNet-50 | total | sampler | scanner | selector | task learner "
        "| rest (saliency, selection) | vs uniform |",
        "|---|---|---|---|---|---|---|---|",
        *flop_rows,
        "",
        f"Best wall time over {repeats} interleaved rounds after one warm-up (ms). Added time, as a "
        "share of the uniform + ResNet-50 pipeline: a pipeline's difference to it, or a sampler's own time "
        "(the more robust estimate on a loaded machine):",
        "",
        "| run | eval forward | added | train forward + backward | added |",
        "|---|---|---|---|---|",
        *time_rows,
    ]


def _sampler_config(**keys) -> SamplerConfig:
    """The learned sampler at this benchmark's T, random-init scanner, without the top-k's control variate."""
    return SamplerConfig(
        num_frames=SELECTED, scanner_pretrained=False, experimental=SamplerExperiments(control_variate=False), **keys
    )


def main() -> None:
    parser = timing_parser(__doc__.splitlines()[0], repeats=3)
    parser.add_argument("--videos", type=int, default=2)
    args = parser.parse_args()
    set_threads(args.threads)
    machine = machine_description([torch.device("cpu")], args.note)  # before the run: its load average
    body = "\n".join(
        [
            *run(args.videos, args.repeats),
            "",
            "FLOPs are forward only: FlopCounterMode overcounts the backward of grouped convolutions "
            "(ShuffleNet-v2). Element-wise work, interpolation and grid_sample are not counted.",
            "",
        ]
    )
    report = markdown_report("Sampler overhead over the backbone", machine, body)
    publish(report, args.output)


if __name__ == "__main__":
    main()
