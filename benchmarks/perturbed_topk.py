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

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from collections.abc import Callable

import torch
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


def machine_description(device: torch.device) -> str:
    """CPU model, cores, torch version, load and (if used) the GPU, as markdown lines."""
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    lines = [
        f"- CPU: {model}, {os.cpu_count()} cores ({platform.machine()})",
        f"- torch {torch.__version__}, Python {platform.python_version()}, {torch.get_num_threads()} intra-op threads",
        f"- load average at start (1/5/15 min): {' / '.join(f'{x:.2f}' for x in os.getloadavg())}",
    ]
    if device.type == "cuda":
        lines.append(f"- GPU: {torch.cuda.get_device_name(device)}")
    return "\n".join(lines)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_times(fns: dict[str, Callable[[], object]], device: torch.device, repeats: int) -> dict[str, float]:
    """Best (minimum) wall time in seconds of each function over ``repeats`` interleaved rounds.

    Each function runs once as a warm-up, then every round runs each function once, so changes of
    the machine's load hit all of them alike. The minimum, not the median: interference from other
    processes only ever adds time, so the fastest run best estimates the code's own cost.
    """
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: min(values) for name, values in times.items()}


def peak_bytes(fn: Callable[[], object], device: torch.device) -> int:
    """Peak bytes allocated on ``device`` during one call of ``fn`` (see the module docstring)."""
    if device.type == "cuda":
        _sync(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        _sync(device)
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


def run(device: torch.device, repeats: int) -> list[str]:
    """Markdown table rows for every configuration on ``device``."""
    rows = []
    for b, m, k, n in CONFIGS:
        gen = torch.Generator(device=device).manual_seed(0)
        scores = torch.rand(b, m, device=device, generator=gen).requires_grad_(True)
        grad = torch.randn(b, k, m, device=device, generator=gen)

        def ours() -> None:
            perturbed_topk(scores, k, num_samples=n, sigma=SIGMA, generator=gen).backward(grad)

        def dense() -> None:
            DenseTopK.apply(scores, k, n, gen).backward(grad)

        def floor() -> None:
            z = torch.randn((b, n, m), generator=gen, device=device)
            perturbed = torch.add(scores.detach().unsqueeze(1), z, alpha=SIGMA)
            torch.topk(perturbed, k, dim=-1, sorted=False).indices.sort(dim=-1)

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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", help="write the markdown report here as well as to stdout")
    parser.add_argument("--note", default="", help="free text added to the report")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    rows = [row for device in devices for row in run(device, args.repeats)]
    report = "\n".join(
        [
            "# perturbed_topk benchmark",
            "",
            f"Command: `python {shlex.join(sys.argv)}`",
            "",
            *(machine_description(d) for d in devices),
            *([f"- note: {args.note}"] if args.note else []),
            "",
            f"Best forward + backward wall time of {args.repeats} interleaved runs (floor: forward only, no autograd), peak memory allocated during "
            "one call, output and tensors saved for backward included. CPU peak: the running total of "
            "the profiler's allocator events (profile_memory=True), i.e. exact bytes held by tensors, "
            "unaffected by other processes (RSS would not be); CUDA: max_memory_allocated. The peak "
            "of perturbed_topk equals the floor's when it is reached inside the noisy top-k itself "
            "(noise, perturbed scores, topk values and indices alive together).",
            "",
            "| device | size | implementation | time (ms) | peak (MiB) |",
            "|---|---|---|---|---|",
            *rows,
            "",
        ]
    )
    print(report)
    if args.output:
        with open(args.output, "w") as f:
            f.write(report)


if __name__ == "__main__":
    main()
