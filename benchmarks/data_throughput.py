"""Data-loading throughput: the episode loader next to the raw decoder, videos vs JPEG folders.

Two measurements, one Markdown report (``benchmarks/results/data_throughput.md``):

1. **Seek break-even** (``--seek-only`` runs just this). On a 10-s 320x240 H.264 clip with a
   keyframe every 8 frames: the cost of one forward-decoded frame against the cost of one seek
   (reposition + decoder flush + decoding up to the first frame), for one decoder thread (as in
   DataLoader workers) and for the default threading of the main process. Their ratio is the
   number of frames a seek must skip to pay off: :data:`stsampler.data.video.SEEK_THRESHOLD`.
   The same clip also shows the machine notes' case: 32 scattered frames by one forward pass, by
   a seek per frame, and by ``read_frames``' automatic choice.

2. **Loader throughput**. Synthetic mp4s, and the same videos extracted to JPEG frame folders
   (short side 256): 5-way 1-shot 1-query episodes of M = 16 frames at 224x224 through the
   project's ``VideoDataset`` + ``EpisodeSampler`` + ``collate_episode`` in a ``DataLoader`` with
   0, 1 and 2 workers, next to the raw decoder: ``read_frames`` of exactly the same frame
   indices in a plain loop. Target: the loader with 0 workers within 1.3x of raw decoding.

Run: ``python benchmarks/data_throughput.py`` (2-5 minutes on 2 shared cores; ``--seek-only``: under one).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from functools import partial
from pathlib import Path

import av
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from _common import best_times, machine_description, markdown_report, publish  # noqa: E402

from stsampler.data import video as video_mod  # noqa: E402
from stsampler.data.video import probe_video, read_frames  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "data_throughput.md"
CPU = torch.device("cpu")


# ----------------------------------------------------------------------------- helpers


def textured_frames(num_frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Moving smooth texture plus noise: compresses like camera footage, not like a flat test card."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    phases = rng.uniform(0, 2 * np.pi, size=(6,))
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    for t in range(num_frames):
        base = (
            np.sin(xx / 17.0 + t * 0.21 + phases[0]) + np.cos(yy / 11.0 - t * 0.13 + phases[1])
            + np.sin((xx + yy) / 23.0 + t * 0.07 + phases[2])
        )
        img = np.stack([base, np.roll(base, 7, axis=1), np.roll(base, 5, axis=0)], axis=-1)
        img = (img * 40 + 128 + rng.normal(0, 6, size=img.shape)).clip(0, 255)
        frames[t] = img.astype(np.uint8)
    return frames


def encode(path: Path, frames: np.ndarray, fps: int = 25, keyint: int = 250, bframes: int = 3) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "23", "preset": "veryfast", "x264-params": f"keyint={keyint}:bframes={bframes}"}
        for array in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


# ----------------------------------------------------------------------------- 1. seek break-even


def seek_breakeven(work: Path, repeat: int) -> list[str]:
    frames = textured_frames(250, 240, 320, seed=1)
    lines = ["## 1. Seek break-even (10-s 320x240 H.264 clip, 250 frames)", ""]

    gop_clip = encode(work / "keyint8.mp4", frames, keyint=8, bframes=3)
    info = probe_video(gop_clip)
    keys = list(range(0, info.num_frames, 8))
    lines += [
        "Keyframe every 8 frames. *forward*: one pass decoding all 250 frames (converting the "
        f"{len(keys)} keyframes); *seek*: a seek to each of the {len(keys)} keyframes, decoding "
        "only up to it. Break-even = seek cost / per-frame decode cost = the frames a seek must skip "
        "to pay off.",
        "",
        "| decoder threads | forward, ms | per frame, ms | seek to each keyframe, ms | per seek, ms "
        "| break-even, frames |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    breakevens = []
    for label, threads in (("1 (DataLoader worker)", 1), ("auto (main process)", 0)):
        t = best_times(
            {
                mode: partial(read_frames, gop_clip, keys, info=info, mode=mode, threads=threads)
                for mode in ("forward", "seek")
            },
            CPU,
            repeat,
        )
        forward, seek = t["forward"], t["seek"]
        per_frame = forward / info.num_frames
        per_seek = seek / len(keys)
        breakevens.append(per_seek / per_frame)
        lines.append(
            f"| {label} | {forward * 1e3:.1f} | {per_frame * 1e3:.3f} | {seek * 1e3:.1f} | {per_seek * 1e3:.2f} | "
            f"{per_seek / per_frame:.1f} |"
        )
        print(lines[-1], flush=True)
    lines += [
        "",
        f"`SEEK_THRESHOLD` in `stsampler/data/video.py` is {video_mod.SEEK_THRESHOLD} frames "
        f"(measured break-even here: {min(breakevens):.1f} to {max(breakevens):.1f}).",
        "",
    ]

    # The machine notes' case: 32 frames of a 10-s clip, one pass vs a seek per frame.
    plain = encode(work / "keyint250.mp4", frames, keyint=250, bframes=3)
    short_gop = encode(work / "keyint25.mp4", frames, keyint=25, bframes=3)
    idx = [int(i) for i in np.linspace(0, 249, 32).round()]
    lines += [
        "32 evenly spread frames (a dense scan) and 4 far-apart frames [10, 90, 170, 240]; "
        "ms, best of runs, decoder threads as in a DataLoader worker (1):",
        "",
        "| clip | frames | one forward pass | seek per frame | read_frames auto |",
        "|---|---|---:|---:|---:|",
    ]
    for name, clip in (("keyint 250 (x264 default)", plain), ("keyint 25", short_gop)):
        clip_info = probe_video(clip)
        for label, targets in (("32 spread", idx), ("4 far apart", [10, 90, 170, 240])):
            t = best_times(
                {
                    mode: partial(read_frames, clip, targets, info=clip_info, mode=mode, threads=1)
                    for mode in ("forward", "seek", "auto")
                },
                CPU,
                repeat,
            )
            row = [t[mode] * 1e3 for mode in ("forward", "seek", "auto")]
            lines.append(f"| {name} | {label} | {row[0]:.1f} | {row[1]:.1f} | {row[2]:.1f} |")
            print(lines[-1], flush=True)
    lines.append("")
    return lines


# ----------------------------------------------------------------------------- 2. loader throughput


def loader_throughput(work: Path, args) -> list[str]:
    from torch.utils.data import DataLoader

    from stsampler.data.extract import extract_frames

    videos_root, source = make_videos(work, args)
    frames_root = work / "frames"
    report = extract_frames(videos_root, frames_root, short_side=256, workers=2, progress=False)
    if report.failed:
        raise SystemExit(f"extraction failed: {report.failed[:3]}")

    lines = [
        "## 2. Loader throughput (5-way 1-shot 1-query, M = 16 frames at 224x224)",
        "",
        f"{source}. Episodes of 10 videos, the same episodes in every row. *raw*: `read_frames` of "
        "the same frame indices (short side 256) in a plain loop, no augmentation, no batching; "
        "*loader*: `DataLoader(dataset, batch_sampler=EpisodeSampler, collate_fn=collate_episode)` "
        "with the dataset's decode + `ClipTransform` (training mode) + collation. "
        "Ratio = loader time / raw time (target <= 1.3 with 0 workers).",
        "",
        "| source | reader | workers | episodes/s | videos/s | ratio to raw |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for label, root in (("mp4", videos_root), ("JPEG folders", frames_root)):
        build = dataset_builder(root, args)
        dataset, sampler, collate = build()
        episodes = list(iter(sampler))
        plan = [[dataset_indices(dataset, item) for item in batch] for batch in episodes]

        def raw(plan=plan) -> None:
            for batch in plan:
                for path, frame_idx in batch:
                    read_frames(path, frame_idx, size=256)

        n_eps = len(episodes)
        n_vid = sum(len(b) for b in episodes)
        loaders = {
            workers: DataLoader(
                dataset, batch_sampler=sampler, collate_fn=collate, num_workers=workers, persistent_workers=workers > 0
            )
            for workers in (0, 1, 2)
        }

        def run(loader) -> None:
            for batch in loader:
                assert batch["frames"].shape[1:] == (16, 3, 224, 224), batch["frames"].shape

        timed = {"raw": raw, **{w: (lambda loader=loader: run(loader)) for w, loader in loaders.items()}}
        t = best_times(timed, CPU, args.repeat)
        raw_s = t["raw"]
        lines.append(f"| {label} | raw read_frames | - | {n_eps / raw_s:.2f} | {n_vid / raw_s:.1f} | 1.00 |")
        for workers in loaders:
            loader_s = t[workers]
            lines.append(
                f"| {label} | DataLoader | {workers} | {n_eps / loader_s:.2f} | {n_vid / loader_s:.1f} | "
                f"{loader_s / raw_s:.2f} |"
            )
        print("\n".join(lines[-4:]), flush=True)
        del loaders
    lines.append("")
    return lines


def make_videos(work: Path, args) -> tuple[Path, str]:
    """Synthetic videos: the project's generator when present, else textured clips made here."""
    try:
        from stsampler.data.synthetic import SynthConfig, generate_dataset
    except ImportError:
        generate_dataset = None
    if generate_dataset is not None:
        config = SynthConfig(num_classes=args.classes, videos_per_class=args.videos_per_class,
                             num_frames=args.num_frames, height=args.height, width=args.width, seed=0)
        out = generate_dataset(work / "synthetic", config, workers=2, progress=False)
        return out / "videos", (
            f"`stsampler.data.synthetic.generate_dataset`: {args.classes} classes x {args.videos_per_class} "
            f"videos, {args.num_frames} frames of {args.width}x{args.height}, H.264"
        )
    root = work / "videos"
    for c in range(args.classes):
        for v in range(args.videos_per_class):
            frames = textured_frames(args.num_frames, args.height, args.width, seed=c * 1000 + v)
            encode(root / f"class{c:02d}" / f"v{v:03d}.mp4", frames)
    return root, (
        f"Textured clips made by this script: {args.classes} classes x {args.videos_per_class} videos, "
        f"{args.num_frames} frames of {args.width}x{args.height}, H.264"
    )


def dataset_builder(root: Path, args):
    """() -> (dataset, batch sampler, collate_fn) for the videos (files or frame folders) under ``root``.

    The project's training pipeline: ``VideoDataset`` (probe, TSN segment draw, ``read_frames`` at
    short side 256, ``ClipTransform`` 224 train mode) + ``EpisodeSampler`` + ``collate_episode``.
    """
    from stsampler.data.dataset import VideoDataset
    from stsampler.data.episodes import EpisodeSampler, collate_episode
    from stsampler.data.splits import VideoItem
    from stsampler.data.transforms import ClipTransform
    from stsampler.data.video import is_video

    items = []
    for label, class_dir in enumerate(sorted(p for p in root.iterdir() if p.is_dir())):
        for path in sorted(class_dir.iterdir()):
            if is_video(path):
                items.append(VideoItem(path=path, label=label, class_name=class_dir.name, video_id=path.stem))
    transform = ClipTransform(crop_size=224, resize_short=256, train=True, flip=True)

    def build():
        dataset = VideoDataset(items, num_frames=16, transform=transform, train=True, seed=0, decode_size=256)
        sampler = EpisodeSampler(dataset.labels, way=5, shot=1, query=1, num_episodes=args.episodes, seed=0)
        return dataset, sampler, partial(collate_episode, shot=1)

    return build


def dataset_indices(dataset, key) -> tuple[Path, torch.Tensor]:
    """The video and frame indices ``dataset[key]`` decodes (same draw, without decoding)."""
    from stsampler.data.indices import segment_indices

    index, draw_seed = key[:2] if isinstance(key, tuple) else (key, None)
    path = dataset.items[index].path
    generator = dataset._generator(index, draw_seed)
    frames = segment_indices(
        probe_video(path).num_frames, dataset.num_frames, random=dataset.train, generator=generator
    )
    return path, frames


# ----------------------------------------------------------------------------- main


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seek-only", action="store_true", help="only the seek break-even measurement")
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument("--classes", type=int, default=6)
    parser.add_argument("--videos-per-class", type=int, default=4)
    parser.add_argument("--num-frames", type=int, default=64)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--repeat", type=int, default=4)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    torch.set_num_threads(1)  # as in DataLoader workers; keeps the rows comparable
    machine = machine_description([CPU])  # before the run: its load average
    with tempfile.TemporaryDirectory(prefix="stsampler_bench_") as tmp:
        work = Path(tmp)
        lines = [
            "Times are best-of-runs wall clock; other processes shared the machine, so compare rows "
            "of one run rather than absolute numbers across machines.",
            "",
        ]
        lines += seek_breakeven(work, repeat=max(3, args.repeat))
        if not args.seek_only:
            lines += loader_throughput(work, args)
    command = None if argv is None else ["benchmarks/data_throughput.py", *argv]
    publish(markdown_report("Data throughput", machine, "\n".join(lines) + "\n", command), args.out)


if __name__ == "__main__":
    main()
