"""Benchmark: perturbed_topk (gather-based estimator) vs a dense implementation.

The dense reference materialises the per-sample one-hots ``[B, N, k, M]`` in forward and the full
Jacobian estimate ``[B, k, M, M]`` in backward, like many public ports. The floor both share is the
noisy top-k itself (noise, topk, sort). Reports the median wall time of forward + backward and the
peak memory allocated by the call.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` after a reset. On CPU the profiler's
memory events (``profile_memory=True``): every CPU-allocator allocation and free inside the call is
recorded with the running total, whose maximum is the call's peak; this is exact allocator
accounting, unaffected by RSS noise from other processes.

Usage: ``python benchmarks/perturbed_topk.py [--repeats 5] [--output benchmarks/results/perturbed_topk.md]``
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable

import torch
from _common import (
    available_devices,
    best_times,
    machine_description,
    markdown_report,
    publish,
    set_threads,
    sync,
    timing_parser,
)
from torch.profiler import ProfilerActivity, profile

from stsampler.ops.topk import perturbed_topk

CONFIGS = ((30, 16, 8, 500), (30, 128, 16, 500))  # (B, M, k, N)
SIGMA = 0.05


class DenseTopK(torch.autograd.Function):
    """The straightforward estimator: dense one-hots and an explicit Jacobian (normal noise)."""

    @staticmethod
    def forward(ctx, scores: torch.Tensor, k: int, num_samples: int, generator: torch.Generator):  # type: ignore[override]
        b, m = scores.shape
        z = torch.randn((b, num_samples, m), generator=generator, device=scores.device)
        idx = torch.topk(scores.unsqueeze(1) + SIGMA * z, k, dim=-1).indices.sort(dim=-1).values
        one_hots = torch.nn.functional.one_hot(idx, m).float()  # [B, N, k, M]
        ctx.save_for_backward(one_hots, z)
        return one_hots.mean(dim=1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        one_hots, z = ctx.saved_tensors
        jacobian = torch.einsum("bnkm,bnj->bkmj", one_hots, z) / (one_hots.shape[1] * SIGMA)
        return torch.einsum("bkm,bkmj->bj", grad, jacobian), None, None, None


def peak_bytes(fn: Callable[[], object], device: torch.device) -> int:
    """Peak bytes allocated on ``device`` during one call of ``fn`` (see the module docstring)."""
    if device.type == "cuda":
        sync(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        sync(device)
        return torch.cuda.max_memory_allocated(device) - base
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "trace.json")
        prof.export_chrome_trace(path)
        with open(path) as f:
            events = json.load(f)["traceEvents"]
    totals = [
        e["args"]["Total Allocated"]
        for e in sorted(events, key=lambda e: e["ts"])
        if e.get("name") == "[memory]" and e["args"].get("Device Type") == 0
    ]
    return max(totals, default=0)


def implementations(
    scores: torch.Tensor, grad: torch.Tensor, k: int, n: int, gen: torch.Generator
) -> tuple[Callable[[], None], Callable[[], None], Callable[[], None]]:
    """The timed calls ``(ours, dense, floor)`` on ``scores [B, M]`` with upstream ``grad [B, k, M]``.

    ``ours`` and ``dense`` run forward + backward with ``n`` noise samples; ``floor`` is the noisy
    top-k alone (no autograd). All draw their noise from ``gen``.
    """
    b, m = scores.shape

    def ours() -> None:
        perturbed_topk(scores, k, num_samples=n, sigma=SIGMA, generator=gen).backward(grad)

    def dense() -> None:
        DenseTopK.apply(scores, k, n, gen).backward(grad)

    def floor() -> None:
        z = torch.randn((b, n, m), generator=gen, device=scores.device)
        perturbed = torch.add(scores.detach().unsqueeze(1), z, alpha=SIGMA)
        torch.topk(perturbed, k, dim=-1, sorted=False).indices.sort(dim=-1)

    return ours, dense, floor


def run(device: torch.device, repeats: int) -> list[str]:
    """Markdown table rows for every configuration on ``device``."""
    rows = []
    for b, m, k, n in CONFIGS:
        gen = torch.Generator(device=device).manual_seed(0)
        scores = torch.rand(b, m, device=device, generator=gen).requires_grad_(True)
        grad = torch.randn(b, k, m, device=device, generator=gen)
        ours, dense, floor = implementations(scores, grad, k, n, gen)

        # Same noise in both: the gradients must agree (a correctness check of the comparison).
        scores.grad = None
        gen.manual_seed(1)
        ours()
        ours_grad = scores.grad.clone()
        scores.grad = None
        gen.manual_seed(1)
        dense()
        max_diff = (scores.grad - ours_grad).abs().max().item()
        scores.grad = None

        fns = {"perturbed_topk": ours, "dense": dense, "noisy top-k floor": floor}
        times = best_times(fns, device, repeats)
        results = {name: (times[name], peak_bytes(fn, device)) for name, fn in fns.items()}
        t_ours, p_ours = results["perturbed_topk"]
        t_dense, p_dense = results["dense"]
        for name, (t, p) in results.items():
            rows.append(
                f"| {device.type} | B={b} M={m} k={k} N={n} | {name} | {t * 1e3:.2f} | {p / 2**20:.2f} |"
            )
        rows.append(
            f"| {device.type} | B={b} M={m} k={k} N={n} | **dense / ours** | "
            f"**{t_dense / t_ours:.1f}x** | **{p_dense / max(p_ours, 1):.1f}x** |"
        )
        rows.append(f"| {device.type} | B={b} M={m} k={k} N={n} | max abs grad diff | {max_diff:.1e} | |")
    return rows


def main() -> None:
    args = timing_parser(__doc__.splitlines()[0], repeats=5).parse_args()
    set_threads(args.threads)
    devices = available_devices()
    machine = machine_description(devices, args.note)  # before the run: its load average
    rows = [row for device in devices for row in run(device, args.repeats)]
    body = "\n".join(
        [
            f"Best forward + backward wall time of {args.repeats} interleaved runs (floor: forward only, "
            "no autograd), peak memory allocated during one call, output and tensors saved for backward "
            "included. CPU peak: the running total of the profiler's allocator events "
            "(profile_memory=True), i.e. exact bytes held by tensors, unaffected by other processes "
            "(RSS would not be); CUDA: max_memory_allocated. The peak of perturbed_topk equals the "
            "floor's when it is reached inside the noisy top-k itself (noise, perturbed scores, topk "
            "values and indices alive together).",
            "",
            "| device | size | implementation | time (ms) | peak (MiB) |",
            "|---|---|---|---|---|",
            *rows,
            "",
        ]
    )
    report = markdown_report("perturbed_topk benchmark", machine, body)
    publish(report, args.output)


if __name__ == "__main__":
    main()
