"""Benchmark: batched ``amplify`` vs its floor (a bare grid_sample) and a per-frame Python loop.

240 frames of 3 x 224 x 224 with 16 x 16 saliency maps (30 videos x 8 selected frames). Timed:
forward only, and forward + backward (gradients to frames and saliency; for the floor to frames
and the grid). The floor is ``grid_sample`` with a precomputed grid: what any warp must pay.
The per-frame loop is the shape of a naive port: one frame at a time, the zoom cap by a
data-dependent ``while`` loop, then a one-frame grid_sample.

Usage: ``python benchmarks/amplify.py [--repeats 3] [--output benchmarks/results/amplify.md]``
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from _common import (
    available_devices,
    best_times,
    machine_description,
    markdown_report,
    publish,
    set_threads,
    timing_parser,
)

from stsampler.ops.amplify import amplify, amplify_grid

FRAMES, SIZE, SALIENCY = 240, 224, 16
MAX_ZOOM = 4.0


def _axis_coordinates(marginal: torch.Tensor, size: int) -> torch.Tensor:
    """Per-frame reference: normalised sampling coordinates ``[size]`` for one marginal ``[n]``."""
    n = marginal.shape[0]
    total = marginal.sum()
    p = marginal / total if total > 0 else torch.full_like(marginal, 1.0 / n)
    cap = MAX_ZOOM / n
    while (p > cap + 1e-7).any():
        excess = (p - cap).clamp_min(0).sum()
        p = p.clamp_max(cap) + excess / n
    cdf = torch.cat([p.new_zeros(1), p.cumsum(0)])
    targets = (torch.arange(size, dtype=p.dtype) + 0.5) / size
    cell = (torch.searchsorted(cdf.detach(), targets, right=True) - 1).clamp(0, n - 1)
    x = cell + (targets - cdf[cell]) / p[cell].clamp_min(1e-12)
    return 2 * x / n - 1


def amplify_loop(frames: torch.Tensor, saliency: torch.Tensor) -> torch.Tensor:
    """Per-frame Python-loop amplification ``[N, C, H, W]`` (same method, no batching)."""
    outputs = []
    for frame, s in zip(frames, saliency, strict=True):
        gx = _axis_coordinates(s.amax(dim=0), frame.shape[2])
        gy = _axis_coordinates(s.amax(dim=1), frame.shape[1])
        grid = torch.stack(torch.broadcast_tensors(gx[None, :], gy[:, None]), dim=-1)
        outputs.append(F.grid_sample(frame[None], grid[None], padding_mode="border", align_corners=False))
    return torch.cat(outputs)


def run(device: torch.device, repeats: int) -> list[str]:
    """Markdown rows ``| device | implementation | forward ms | forward+backward ms |``."""
    gen = torch.Generator(device=device).manual_seed(0)
    frames = torch.rand(FRAMES, 3, SIZE, SIZE, device=device, generator=gen)
    saliency = torch.rand(FRAMES, SALIENCY, SALIENCY, device=device, generator=gen) ** 4
    grid = amplify_grid(saliency, (SIZE, SIZE), MAX_ZOOM)
    grad_out = torch.randn(FRAMES, 3, SIZE, SIZE, device=device, generator=gen)
    frames_g = frames.clone().requires_grad_(True)
    saliency_g = saliency.clone().requires_grad_(True)
    grid_g = grid.clone().requires_grad_(True)

    impls = {
        "grid_sample floor": (
            lambda x, g: F.grid_sample(x, g, padding_mode="border", align_corners=False), grid, grid_g
        ),
        "amplify (batched)": (lambda x, s: amplify(x, s, MAX_ZOOM), saliency, saliency_g),
        "per-frame loop": (amplify_loop, saliency, saliency_g),
    }

    def step(name: str, train: bool):
        fn, second, second_g = impls[name]

        def call() -> None:
            if not train:
                fn(frames, second)
                return
            fn(frames_g, second_g).backward(grad_out)
            frames_g.grad = second_g.grad = None
        return call

    max_diff = (amplify_loop(frames, saliency) - amplify(frames, saliency, MAX_ZOOM)).abs().max().item()
    with torch.no_grad():
        forward = best_times({name: step(name, False) for name in impls}, device, repeats)
    train = best_times({name: step(name, True) for name in impls}, device, repeats)
    times = {name: (forward[name], train[name]) for name in impls}
    base = times["grid_sample floor"]
    rows = [
        f"| {device.type} | {name} | {fwd * 1e3:.1f} ({fwd / base[0]:.2f}x) | "
        f"{both * 1e3:.1f} ({both / base[1]:.2f}x) |"
        for name, (fwd, both) in times.items()
    ]
    rows.append(f"| {device.type} | max abs diff batched vs loop | {max_diff:.1e} | |")
    return rows


def main() -> None:
    args = timing_parser(__doc__.splitlines()[0], repeats=3).parse_args()
    set_threads(args.threads)
    devices = available_devices()
    machine = machine_description(devices, args.note)  # before the run: its load average
    rows = [row for device in devices for row in run(device, args.repeats)]
    body = "\n".join(
        [
            f"{FRAMES} frames 3x{SIZE}x{SIZE} float32, saliency {SALIENCY}x{SALIENCY}, max_zoom {MAX_ZOOM}. "
            f"Best wall time of {args.repeats} interleaved runs after a warm-up; in brackets the ratio to the "
            "floor (grid_sample with a precomputed grid). Forward runs under no_grad.",
            "",
            "| device | implementation | forward ms | forward + backward ms |",
            "|---|---|---|---|",
            *rows,
            "",
        ]
    )
    report = markdown_report("amplify benchmark", machine, body)
    publish(report, args.output)


if __name__ == "__main__":
    main()
