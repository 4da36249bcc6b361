"""Helpers shared by the benchmark scripts: timing, machine description, Markdown reports.

The scripts run as ``python benchmarks/<name>.py``, which puts this folder on ``sys.path``, so they
import these with ``from _common import ...``.
"""
from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import av
import torch

from stsampler.io import atomic_write_text

Key = TypeVar("Key", bound=Hashable)


def sync(device: torch.device) -> None:
    """Wait for the work queued on ``device`` (a no-op on CPU), so wall times cover it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_times(fns: Mapping[Key, Callable[[], object]], device: torch.device, repeats: int) -> dict[Key, float]:
    """Best (minimum) wall time in seconds of each function over ``repeats`` interleaved rounds.

    Each function runs once as a warm-up, then every round runs each function once, so changes of
    the machine's load hit all of them alike. The minimum, not the median: interference from other
    processes only ever adds time, so the fastest run best estimates the code's own cost.
    """
    for fn in fns.values():
        fn()
    times: dict[Key, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync(device)
            start = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: min(values) for name, values in times.items()}


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo``; elsewhere ``platform.processor()`` or "unknown CPU"."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_description(
    devices: Sequence[torch.device], note: str = "", load: Sequence[float] | None = None
) -> str:
    """The machine paragraph of every benchmark report: Markdown lines, then ``- note: ...`` if given.

    The host once (CPU model and cores; torch, PyAV and Python versions with torch's intra-op
    threads; the 1/5/15-minute load average), then the GPU of each CUDA device in ``devices``.
    ``load`` is the load average taken when the benchmark started; by default it is read now, so
    call this before measuring.
    """
    load = os.getloadavg() if load is None else load
    lines = [
        f"- CPU: {cpu_model()}, {os.cpu_count()} cores ({platform.machine()})",
        f"- torch {torch.__version__}, PyAV {av.__version__}, Python {platform.python_version()}, "
        f"{torch.get_num_threads()} intra-op threads",
        f"- load average at start (1/5/15 min): {' / '.join(f'{x:.2f}' for x in load)}",
    ]
    lines += [f"- GPU: {torch.cuda.get_device_name(device)}" for device in devices if device.type == "cuda"]
    if note:
        lines.append(f"- note: {note}")
    return "\n".join(lines)


def timing_parser(description: str, repeats: int) -> argparse.ArgumentParser:
    """Argument parser with the options the timing benchmarks share.

    ``--repeats`` (default ``repeats``), ``--output`` (report file), ``--note`` (free text for the
    report) and ``--threads`` (torch intra-op threads; apply with :func:`set_threads`).
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--output", help="write the markdown report here as well as to stdout")
    parser.add_argument("--note", default="", help="free text added to the report")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    return parser


def available_devices() -> list[torch.device]:
    """The CPU, then the default CUDA device when there is one."""
    return [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])


def set_threads(threads: int | None) -> None:
    """Set torch's intra-op threads when ``threads`` is given (non-zero), else keep torch's choice."""
    if threads:
        torch.set_num_threads(threads)


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command that ran the benchmark, shell-quoted: ``python`` and ``argv`` (default ``sys.argv``)."""
    return f"python {shlex.join(sys.argv if argv is None else argv)}"


def markdown_report(title: str, machine: str, body: str, argv: Sequence[str] | None = None) -> str:
    """``# title``, the command line (:func:`command_line` of ``argv``), the machine paragraph
    (:func:`machine_description`), then ``body``."""
    return f"# {title}\n\nCommand: `{command_line(argv)}`\n\n{machine}\n\n{body}"


def write_report(path: str | os.PathLike, report: str) -> Path:
    """Write the Markdown ``report`` to ``path`` atomically (folders created) and say so on stdout."""
    written = atomic_write_text(path, report)
    print(f"wrote {written}")
    return written


def publish(report: str, output: str | os.PathLike | None) -> None:
    """Print the Markdown ``report``, then write it to ``output`` (:func:`write_report`) when given."""
    print(report)
    if output:
        write_report(output, report)


def add_candidate_options(parser: argparse.ArgumentParser, folders: str) -> None:
    """``--set KEY=VALUE ...`` and ``--label NAME``: a candidate change of the recipe, whose runs go to
    ``folders`` (the script's comparison folders with ``-LABEL``) beside the recipe's own."""
    parser.add_argument(
        "--set", nargs="+", default=[], metavar="KEY=VALUE",
        help="a candidate change of the recipe: overrides of every run (needs --label)",
    )
    parser.add_argument("--label", help=f"names the comparisons' folders ({folders}) of a run with --set")


def report_path(default: Path, label: str | None) -> Path:
    """The report a run writes unless told: ``default`` for the recipe, ``<stem>_LABEL<suffix>`` beside it
    for a candidate change, so that a candidate's table never replaces the recipe's."""
    return default.with_name(f"{default.stem}_{label}{default.suffix}") if label else default


def candidate_change(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    """Refuse ``--set`` without ``--label`` or the reverse; the words that name the candidate change in a
    report ("" for the recipe itself)."""
    if bool(args.set) != bool(args.label):
        parser.error("--set and --label go together: the label keeps a candidate's runs apart from the recipe's")
    return f" with the candidate change `{' '.join(args.set)}`" if args.set else ""
