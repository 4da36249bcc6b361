"""Turn video files into resized JPEG frame folders (the TRX layout), in parallel and resumably.

``src/class/video.mp4`` becomes ``dst/class/video/00000001.jpg, 00000002.jpg, ...`` (1-based,
8 digits, every frame in presentation order, short side resized to ``short_side``). Reading
JPEG folders is cheaper than decoding video when the same videos are read for many epochs.

Each video is written into a hidden temporary folder beside its target
(``dst/class/.video.partial-<pid>-<random>``) and renamed to ``dst/class/video`` only once every
frame is on disk. A finished folder is therefore complete, an interrupted run leaves only hidden
``.partial`` folders (removed by the next run), and rerunning skips what is done.
"""
from __future__ import annotations

import multiprocessing
import os
import shutil
import sys
import uuid
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from stsampler.errors import VideoReadError

from .video import (
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    _configure_threads,
    _iter_frames,
    _open_container,
    _output_size,
    _video_stream,
)

__all__ = ["ExtractReport", "extract_frames", "find_videos", "frame_folder_for"]

PARTIAL_MARK = ".partial-"


@dataclass
class ExtractReport:
    """What :func:`extract_frames` did.

    Attributes:
        done: videos extracted by this run.
        skipped: videos whose frame folder already existed (finished by an earlier run).
        failed: ``(video path, message)`` for every video that could not be extracted.
    """

    done: int = 0
    skipped: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.done + self.skipped + len(self.failed)

    def __str__(self) -> str:
        return f"{self.done} extracted, {self.skipped} already done, {len(self.failed)} failed"


def find_videos(src: str | os.PathLike) -> list[Path]:
    """Every video file under ``src`` (recursively, supported extensions, no hidden files), sorted."""
    src = Path(src)
    found = []
    for root, dirs, files in os.walk(src):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in VIDEO_EXTENSIONS:
                found.append(Path(root) / name)
    return sorted(found)


def frame_folder_for(video: Path, src: Path, dst: Path) -> Path:
    """``dst/<relative folder>/<video file name without extension>``."""
    rel = Path(video).relative_to(src)
    return Path(dst) / rel.parent / rel.stem


def _is_finished(folder: Path) -> bool:
    if not folder.is_dir():
        return False
    with os.scandir(folder) as entries:
        return any(os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS for e in entries)


def _remove_stale_partials(target: Path) -> None:
    if not target.parent.is_dir():
        return
    prefix = f".{target.name}{PARTIAL_MARK}"
    with os.scandir(target.parent) as entries:
        stale = [Path(e.path) for e in entries if e.name.startswith(prefix) and e.is_dir()]
    for folder in stale:
        shutil.rmtree(folder, ignore_errors=True)


def extract_video(video: str | os.PathLike, target: str | os.PathLike, short_side: int | None = 256,
                  quality: int = 90, threads: int | None = None) -> int:
    """Write every frame of ``video`` as ``target/00000001.jpg ...``; return the frame count.

    Writes into a temporary folder beside ``target`` and renames it at the end; a failure removes
    the temporary folder and raises :class:`VideoReadError` (or ``OSError`` for disk problems).
    ``short_side=None`` keeps the original size.
    """
    video, target = Path(video), Path(target)
    if not video.is_file():
        raise VideoReadError(f"{video}: no such video file.")
    if video.stat().st_size == 0:
        raise VideoReadError(f"{video}: the file is empty (0 bytes); re-download it.")
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(target)
    tmp = target.parent / f".{target.name}{PARTIAL_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    count = 0
    try:
        container = _open_container(video)
        try:
            stream = _video_stream(container, video)
            _configure_threads(stream, threads)
            size = None
            for frame in _iter_frames(container, stream, video):
                if size is None:
                    size = _output_size(frame.width, frame.height, short_side)
                image = frame.reformat(
                    width=size[0], height=size[1], format="rgb24", interpolation="BILINEAR"
                ).to_image()
                count += 1
                image.save(tmp / f"{count:08d}.jpg", quality=int(quality))
        finally:
            container.close()
        if count == 0:
            raise VideoReadError(
                f"{video}: no frame could be decoded; the file is truncated or corrupt: re-download it."
            )
        try:
            os.rename(tmp, target)
        except OSError:
            if _is_finished(target):  # another run finished it meanwhile
                shutil.rmtree(tmp, ignore_errors=True)
                return count
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return count


def _job(video: str, target: str, short_side: int | None, quality: int, threads: int | None) -> tuple[str, str | None]:
    """Process-pool entry point: ("done", None) or ("failed", message); never raises for bad input."""
    try:
        extract_video(video, target, short_side, quality, threads)
        return "done", None
    except VideoReadError as exc:
        return "failed", str(exc)
    except Exception as exc:  # disk full, permissions, an FFmpeg oddity: report, do not stop the run
        return "failed", f"{video}: {type(exc).__name__}: {exc}"


def _pool_context():
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if sys.platform.startswith("linux") and "fork" in methods else "spawn")


def extract_frames(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    short_side: int = 256,
    workers: int = 1,
    quality: int = 90,
    progress: bool = True,
) -> ExtractReport:
    """Convert every video under ``src`` into a JPEG frame folder under ``dst`` (same layout).

    Args:
        src: a folder of videos (any depth; ``class/video.mp4`` is the usual layout).
        dst: where ``class/video_id/00000001.jpg ...`` go; may be inside ``src``'s parent, not
            inside ``src`` itself.
        short_side: frames are scaled so the short side has this many pixels (aspect kept; small
            videos are scaled up). ``0`` or ``None`` keeps the original size.
        workers: processes decoding in parallel (1: in this process).
        quality: JPEG quality (1..100; PIL advises at most 95).
        progress: show a tqdm progress bar.

    Returns:
        An :class:`ExtractReport`. Videos that fail are listed there, the run goes on.
        Interrupting the run is safe: rerun it to finish.
    """
    from tqdm import tqdm

    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise VideoReadError(f"{src}: no such folder of videos; check the path.")
    if dst.resolve() == src.resolve() or src.resolve() in dst.resolve().parents:
        raise ValueError(f"dst ({dst}) must not be inside src ({src}): frame folders would mix with the videos")
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"quality must be in 1..100, got {quality}")
    short = int(short_side) if short_side else None
    report = ExtractReport()
    jobs: list[tuple[Path, Path]] = []
    claimed: dict[Path, Path] = {}
    for video in find_videos(src):
        target = frame_folder_for(video, src, dst)
        if target in claimed:
            report.failed.append((video, f"{video}: same video id as {claimed[target]}; rename one of them."))
            continue
        claimed[target] = video
        if _is_finished(target):
            report.skipped += 1
        else:
            jobs.append((video, target))

    pool = futures = None
    if workers > 1 and len(jobs) > 1:
        # Workers are forked where possible: they need PyAV and PIL only, and a spawned worker
        # would first spend seconds importing torch. Forking happens at the first submit, before
        # the progress bar starts its monitor thread.
        threads = 1 if workers >= (os.cpu_count() or 1) else None
        pool = ProcessPoolExecutor(max_workers=int(workers), mp_context=_pool_context())
        futures = {
            pool.submit(_job, str(video), str(target), short, int(quality), threads): video for video, target in jobs
        }
    bar = tqdm(
        total=len(jobs) + report.skipped, initial=report.skipped, unit="video", desc="extract", disable=not progress
    )

    def record(video: Path, status: str, message: str | None) -> None:
        if status == "done":
            report.done += 1
        else:
            report.failed.append((video, message or f"{video}: failed"))
            bar.set_postfix(failed=len(report.failed))
        bar.update(1)

    try:
        if pool is None:
            for video, target in jobs:
                record(video, *_job(str(video), str(target), short, int(quality), None))
        else:
            for future in as_completed(futures):
                video = futures[future]
                try:
                    record(video, *future.result())
                except BrokenProcessPool as exc:
                    record(video, "failed", f"{video}: a worker process died ({exc}); rerun to retry.")
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
    return report
