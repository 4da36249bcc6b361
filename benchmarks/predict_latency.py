"""Latency of ``stsampler predict``: seconds per query video on this CPU, support set cached.

Setting (issue #5): a 10-s 320x240 H.264 query (25 fps, 250 frames, a keyframe every 2 s),
ResNet-18 at 224 (random initialisation: weights do not change the cost), the full learned sampler
(temporal selector + spatial amplifier + task-adaptive learner, ShuffleNet-v2 x0.5 scanner at 64 px),
M = 16 dense frames, T = 8 selected frames, ProtoNet head, 5-way 1-shot support set embedded once
beforehand. Target: under 1 s per query on 2 CPU cores.

Reported: ``Predictor.predict`` end to end on the video file and its stages measured separately
(decode the M frames at 224, sample, embed + classify); ``Predictor.predict`` on the same clip as a
JPEG frame folder (the two-pass path: M frames at the scanner's size, then the T selected frames at
224); and the decoding cost the two-pass path would have on the video file.

Run: ``python benchmarks/predict_latency.py [--threads 2] [--repeat 7] [--output FILE]``; writes
``benchmarks/results/predict_latency.md`` unless told otherwise.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
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

from _common import machine_description, markdown_report, write_report  # noqa: E402

from stsampler.config import config_from_dict  # noqa: E402
from stsampler.data.extract import extract_video  # noqa: E402
from stsampler.data.transforms import normalize  # noqa: E402
from stsampler.engine.builder import build_model  # noqa: E402
from stsampler.engine.predict import Predictor  # noqa: E402
from stsampler.engine.runtime import autocast, resolve_amp  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "predict_latency.md"
WAY, M, T, CROP, SHORT = 5, 16, 8, 224, 256
AMPS = {"auto": "bf16 autocast", "none": "fp32"}  # train.amp value -> label


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


STAGES = (
    "decode M frames (224)",
    "sampler (scan, select, amplify)",
    "backbone + head",
)
END_TO_END = "predict() end to end, video file"
FOLDER = "predict() end to end, JPEG frame folder (two-pass path)"
TWO_PASS_DECODE = "not taken for files: decode M at scan size, then T at 224"


def stage_times(predictor: Predictor, query: Path) -> list[float]:
    """The video-file path of one query, stage by stage (the calls ``Predictor.predict`` makes)."""
    sampler, model, support = predictor.model.sampler, predictor.model, predictor.support
    numbers = predictor.dense_frame_numbers(query)
    with torch.inference_mode():
        t0 = time.perf_counter()
        clips = normalize(predictor.decode(query, numbers))[None]
        t1 = time.perf_counter()
        with autocast(predictor.device, predictor.amp):
            output = sampler(clips, torch.zeros(1, dtype=torch.bool), task=support.task)
        t2 = time.perf_counter()
        with autocast(predictor.device, predictor.amp):
            embedding = model.embed_frames(output.frames, output.video_feature)
            model.classify(support.embeddings, support.labels, embedding, WAY).float().softmax(-1)
        t3 = time.perf_counter()
    return [t1 - t0, t2 - t1, t3 - t2]


def two_pass_decode(predictor: Predictor, query: Path) -> None:
    """The decoding the two-pass path would do on a video file (T frames spread over the clip)."""
    numbers = predictor.dense_frame_numbers(query)
    predictor.decode(query, numbers, low_res=True)
    predictor.decode(query, numbers[1::2])


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(predictor: Predictor, query: Path, folder: Path, repeat: int) -> dict[str, list[float]]:
    """Interleaved rounds, so that load spikes from other processes hit every row alike; the first
    round is a warm-up and is dropped."""
    times: dict[str, list[float]] = {name: [] for name in (END_TO_END, *STAGES, FOLDER, TWO_PASS_DECODE)}
    for round_ in range(repeat + 1):
        row = [
            seconds(lambda: predictor.predict(query)),
            *stage_times(predictor, query),
            seconds(lambda: predictor.predict(folder)),
            seconds(lambda: two_pass_decode(predictor, query)),
        ]
        if round_:
            for name, value in zip(times, row, strict=True):
                times[name].append(value)
    return times


def run_one(
    amp: str, support: Path, query: Path, folder: Path, repeat: int, threads: int
) -> tuple[float, dict[str, list[float]]]:
    """Support embedding time and :func:`measure` for one precision, run in a fresh process so that
    neither precision inherits the other's warmed-up oneDNN kernels and caches."""
    torch.set_num_threads(threads)
    predictor = build_predictor(support.parent / f"cache-{amp}", amp)
    support_time = seconds(lambda: predictor.set_support(support))
    return support_time, measure(predictor, query, folder, repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    parser.add_argument("--repeat", type=int, default=7, help="timed rounds after one warm-up round")
    parser.add_argument("--no-write", action="store_true", help="print only, do not write the report")
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"the report (default {RESULTS})")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    results: dict[str, dict[str, list[float]]] = {}
    support_seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        query = write_clip(tmp / "query.mp4")
        folder = tmp / "query_frames"
        extract_video(query, folder, short_side=SHORT)
        support = tmp / "support"
        for c in range(WAY):
            (support / f"action{c}").mkdir(parents=True)
            write_clip(support / f"action{c}" / "example.mp4", seconds=4.0, seed=c + 1)
        spawn = multiprocessing.get_context("spawn")
        for amp in AMPS:
            with spawn.Pool(1) as pool:
                job = (amp, support, query, folder, args.repeat, args.threads)
                support_seconds[amp], results[amp] = pool.apply(run_one, job)
    load_after = os.getloadavg()[0]

    header = " | ".join(f"{AMPS[a]} median s | {AMPS[a]} min s" for a in AMPS)
    lines = [f"| step | {header} |", "|---|" + "---|" * (2 * len(AMPS))]
    for name in results[next(iter(AMPS))]:
        cells = " | ".join(
            f"{statistics.median(results[a][name]):.3f} | {min(results[a][name]):.3f}" for a in AMPS
        )
        lines.append(f"| {name} | {cells} |")
    table = "\n".join(lines)
    sentences = []
    for amp, label in AMPS.items():
        median = statistics.median(results[amp][END_TO_END])
        sentences.append(
            f"{label}: median {median:.3f} s per query ({'meets' if median < 1.0 else 'misses'} the 1 s target); "
            f"embedding the {WAY}-video support set once took {support_seconds[amp]:.2f} s (cached afterwards)."
        )
    summary = "\n".join(f"- {s}" for s in sentences)
    print(table)
    print(summary)
    if args.no_write:
        return
    note = (
        f"1-minute load average {load_after:.2f} at the end; where other processes shared the cores the "
        "numbers are noisy, and the minimum columns are the closest to an idle machine"
    )
    machine = machine_description([torch.device("cpu")], note, load=load_before)
    body = f"""Setting: 10-s 320x240 H.264 query (25 fps, 250 frames, keyframe every 50 frames); ResNet-18 at 224
(random init); full learned sampler (ShuffleNet-v2 x0.5 scanner at 64 px, temporal selector, spatial
amplifier, task-adaptive learner); M = {M}, T = {T}; ProtoNet; {WAY}-way 1-shot support set cached;
batch of one query; {args.repeat} rounds after a warm-up. Two precisions, each in its own fresh
process: bf16 autocast (what `train.amp: auto` gives a ResNet on CPU, so what `stsampler predict`
uses for such runs; this CPU has AMX-bf16) and fp32.

Seconds per 10-s 320x240 query:
{summary}

{table}

Each round times `Predictor.predict` on the video file, then the same calls one by one (the stage
rows), then `Predictor.predict` on the same clip extracted to JPEGs (short side {SHORT}), then the
decoding a two-pass path would do on the video file; rounds are interleaved so load spikes hit
every row alike. The last row is why video files are decoded once: H.264 decodes every frame up
to the last one requested whatever the output size, so reading the M frames small and then the T
selected frames large costs more than reading the M frames large once. Frame folders read each
JPEG on its own, at reduced scale when small, so there the two-pass path decodes less.
"""
    write_report(args.output, markdown_report("`stsampler predict` latency", machine, body))


if __name__ == "__main__":
    main()
