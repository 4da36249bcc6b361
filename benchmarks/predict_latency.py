"""Latency of ``stsampler predict``: seconds per query video on this CPU, support set cached.

Setting (issue #5): a 10-s 320x240 H.264 query (25 fps, 250 frames, a keyframe every 2 s),
ResNet-18 at 224 (random initialisation: weights do not change the cost), the full learned sampler
(temporal selector + spatial amplifier + task-adaptive learner, ShuffleNet-v2 x0.5 scanner at 64 px),
M = 16 dense frames, T = 8 selected frames, ProtoNet head, 5-way 1-shot support set embedded once
beforehand. Target: under 1 s per query on 2 CPU cores.

Reported: ``Predictor.predict`` end to end, and its stages measured separately: decoding the M scan
frames at low resolution, ``STSampler.plan``, decoding the T selected frames at full resolution,
amplification + backbone + head. For reference, the naive path: decode all M frames at 224 and run
``FewShotRecognizer.embed`` on them.

Run: ``python benchmarks/predict_latency.py [--threads 2] [--repeat 5]``; writes
``benchmarks/results/predict_latency.md``.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from stsampler.config import config_from_dict  # noqa: E402
from stsampler.data.transforms import normalize  # noqa: E402
from stsampler.engine.builder import build_model  # noqa: E402
from stsampler.engine.evaluate import autocast, resolve_amp  # noqa: E402
from stsampler.engine.predict import Predictor, embed_sampled_frames  # noqa: E402
from stsampler.io import atomic_write_text  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "predict_latency.md"
WAY, M, T, CROP, SHORT = 5, 16, 8, 224, 256


def write_clip(path: Path, seconds: float = 10.0, fps: int = 25, width: int = 320, height: int = 240,
               seed: int = 0) -> Path:
    """A camera-like H.264 clip: a drifting smooth texture plus noise and a moving bright box."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, 3)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = 2 * fps
        for t in range(int(seconds * fps)):
            texture = [np.sin(xx / (17 + 5 * c) + yy / 23 + t / 9 + phase[c]) for c in range(3)]
            image = (np.stack(texture, -1) * 60 + 110 + rng.normal(0, 6, (height, width, 3))).clip(0, 255)
            x = (5 * t) % (width - 60)
            image[80:150, x : x + 60] = (240, 220, 40)
            frame = av.VideoFrame.from_ndarray(image.astype(np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def build_predictor(cache_dir: Path, amp: str) -> Predictor:
    cfg = config_from_dict(
        {
            "data": {"split_dir": "unused", "num_frames": M, "crop_size": CROP, "resize_short": SHORT},
            "sampler": {"kind": "learned", "num_frames": T, "temporal": True, "spatial": True,
                        "task_adaptive": True, "scanner_pretrained": False, "scan_size": 64},
            "model": {"backbone": "resnet18", "pretrained": False, "head": "protonet"},
        }
    )
    torch.manual_seed(0)
    dtype = resolve_amp(amp, torch.device("cpu"), cfg.model.backbone)
    model = build_model(cfg, num_train_classes=64)
    return Predictor(model, M, CROP, SHORT, batch_size=1, cache_dir=cache_dir, amp=dtype)


def timed(fn, repeat: int) -> list[float]:
    """Wall times of ``repeat`` calls of ``fn()``, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def stages(predictor: Predictor, query: Path, repeat: int) -> dict[str, list[float]]:
    """The inference path of one query, stage by stage (the same calls ``Predictor.predict`` makes)."""
    sampler, model, support = predictor.model.sampler, predictor.model, predictor.support
    numbers = predictor.dense_frame_numbers(query)
    out: dict[str, list[float]] = {"decode M scan frames (low res)": []}
    for name in ("plan (scan, select, saliency)", "decode T selected frames (224)", "amplify + backbone + head"):
        out[name] = []
    for i in range(repeat + 1):
        with torch.inference_mode():
            t0 = time.perf_counter()
            scan = normalize(predictor.decode(query, numbers, low_res=True))[None]
            t1 = time.perf_counter()
            with autocast(predictor.device, predictor.amp):
                plan = sampler.plan(scan, torch.zeros(1, dtype=torch.bool), support.task)
            t2 = time.perf_counter()
            full = normalize(predictor.decode(query, numbers[plan.indices[0]]))[None]
            t3 = time.perf_counter()
            with autocast(predictor.device, predictor.amp):
                embedding = embed_sampled_frames(model, sampler.apply(plan, full), plan.video_feature)
                model.classify(support.embeddings, support.labels, embedding, WAY).float().softmax(-1)
            t4 = time.perf_counter()
        if i:
            for name, seconds in zip(out, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                out[name].append(seconds)
    return out


def naive(predictor: Predictor, query: Path) -> None:
    """Reference: decode all M dense frames at 224, run the recogniser's own ``embed``."""
    numbers = predictor.dense_frame_numbers(query)
    with torch.inference_mode(), autocast(predictor.device, predictor.amp):
        clips = normalize(predictor.decode(query, numbers))[None]
        predictor.model.embed(clips, torch.ones(1, dtype=torch.bool))


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    parser.add_argument("--repeat", type=int, default=5, help="timed repetitions after one warm-up")
    parser.add_argument("--amp", default="auto", choices=["auto", "bf16", "none"],
                        help="autocast as in evaluation: auto = bf16 for ResNet on CPU (default)")
    parser.add_argument("--no-write", action="store_true", help="print only, do not write the report")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        query = write_clip(tmp / "query.mp4")
        support = tmp / "support"
        for c in range(WAY):
            (support / f"action{c}").mkdir(parents=True)
            write_clip(support / f"action{c}" / "example.mp4", seconds=4.0, seed=c + 1)
        predictor = build_predictor(tmp / "cache", args.amp)
        start = time.perf_counter()
        predictor.set_support(support)
        support_seconds = time.perf_counter() - start
        end_to_end = timed(lambda: predictor.predict([query]), args.repeat)
        parts = stages(predictor, query, args.repeat)
        reference = timed(lambda: naive(predictor, query), args.repeat)

    load = f"{load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    rows = [("predict() end to end", end_to_end)] + list(parts.items()) + [
        ("reference: decode M at 224 + embed (no low-res scan)", reference)
    ]
    lines = [
        "| step | median s | min s |",
        "|---|---|---|",
        *(f"| {name} | {statistics.median(t):.3f} | {min(t):.3f} |" for name, t in rows),
    ]
    verdict = "meets" if statistics.median(end_to_end) < 1.0 else "misses"
    summary = (
        f"Seconds per 10-s 320x240 query: median {statistics.median(end_to_end):.3f} s over {args.repeat} runs "
        f"({verdict} the 1 s target) with {args.threads} torch threads, autocast {predictor.amp}; embedding the {WAY}-video support "
        f"set once took {support_seconds:.2f} s (cached afterwards)."
    )
    table = "\n".join(lines)
    print(table)
    print(summary)
    if args.no_write:
        return
    report = f"""# `stsampler predict` latency

Command: `python benchmarks/predict_latency.py --threads {args.threads} --repeat {args.repeat} --amp {args.amp}`
(autocast dtype: {predictor.amp or "none, fp32"})

Machine: {machine()}, {torch.get_num_threads()} torch threads of {os.cpu_count()} logical CPUs,
Python {platform.python_version()}, torch {torch.__version__}, PyAV {av.__version__}. Other processes
(other developers' tests and benchmarks) were running on the same cores: 1-minute load average
{load}. The numbers are therefore noisy and on the slow side; the minimum column is the closest
to an idle machine.

Setting: 10-s 320x240 H.264 query (25 fps, 250 frames, keyframe every 50 frames); ResNet-18 at 224
(random init); full learned sampler (ShuffleNet-v2 x0.5 scanner at 64 px, temporal selector, spatial
amplifier, task-adaptive learner); M = {M}, T = {T}; ProtoNet; {WAY}-way 1-shot support set cached.

{summary}

{table}

The stage rows re-run the same calls as `Predictor.predict` one by one; they do not add up
exactly to the end-to-end row (timer noise, list/JSON bookkeeping).
"""
    atomic_write_text(RESULTS, report)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
