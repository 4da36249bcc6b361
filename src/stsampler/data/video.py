"""Reading frames from video files and from frame folders.

Two kinds of "video" are served by the same two functions:

* a video file (``.mp4 .webm .avi .mkv .mov``), decoded with PyAV;
* a frame folder in the TRX layout, ``class/video_id/00000001.jpg ...`` (``.jpg .jpeg .png``),
  where frame ``i`` (0-based) is the ``i``-th image in natural name order.

:func:`probe_video` says how many frames a video has; :func:`read_frames` returns the frames at
any list of indices as ``uint8 [len(indices), 3, H, W]``, optionally resized at decode time.

Frame indices are presentation-order indices (what a player shows as frame 0, 1, 2, ...), never
decode order. Every problem with the input (missing, empty, truncated, undecodable file, no video
stream, index out of range, far fewer frames than the container declares) raises
:class:`stsampler.errors.VideoReadError` with a message that names the file.

Decoding strategy (video files). Decoding is sequential by nature: a frame can only be decoded
from the previous keyframe on. :func:`read_frames` therefore makes one forward pass over the
stream and converts only the requested frames, stopping after the last one. It seeks only where
that saves work: when the next requested frame lies beyond a keyframe that is more than
``seek_threshold`` frames ahead of the decoder's position, it jumps to that keyframe instead of
decoding the frames in between. The default threshold :data:`SEEK_THRESHOLD` was measured (see
``benchmarks/data_throughput.py``): one seek (demuxer reposition, decoder flush and restart)
costs about as much as decoding that many frames. Requests whose gaps are all below the
threshold never pay for the keyframe index (one demuxing pass over the packets, no decoding).
"""
from __future__ import annotations

import bisect
import itertools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from stsampler.errors import VideoReadError

try:  # PyAV is a hard dependency, but keep the import error readable.
    import av
except ImportError as exc:  # pragma: no cover
    raise ImportError("stsampler needs PyAV to read videos: pip install av") from exc

__all__ = [
    "VIDEO_EXTENSIONS",
    "IMAGE_EXTENSIONS",
    "SEEK_THRESHOLD",
    "VideoInfo",
    "probe_video",
    "read_frames",
    "is_video",
    "list_frame_files",
    "check_path",
]

VIDEO_EXTENSIONS = (".mp4", ".webm", ".avi", ".mkv", ".mov")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")

#: Seek only when it skips more than this many frames. Measured with
#: ``python benchmarks/data_throughput.py --seek-only`` (2 shared CPU cores, PyAV 18 / FFmpeg 8,
#: 320x240 H.264 with B-frames): one seek (reposition, decoder flush, decoding up to the first
#: frame out) costs as much as decoding 6-7 frames with one decoder thread (DataLoader workers)
#: and about 9 with frame threading (main process); see benchmarks/results/data_throughput.md.
#: A wrong guess is cheap either way: seeking too rarely decodes a few extra frames, seeking too
#: often pays a few extra flushes.
SEEK_THRESHOLD = 8

_READ_MODES = ("auto", "forward", "seek")
_HINT_REDO = "re-download or re-extract it, or drop it from the split list"


def _counts_agree(found: float, declared: float) -> bool:
    """Whether two frame counts agree within 5 % (and 2 frames): metadata and streams differ by a
    frame or two (edit lists, rounding), a damaged file by much more."""
    return abs(found - declared) <= max(2.0, 0.05 * declared)


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` learns about a video without decoding it.

    Attributes:
        path: the video file or frame folder.
        num_frames: the number of frames (always >= 1).
        fps: frames per second; ``0.0`` for a frame folder (a folder of images carries no frame
            rate) and for a file whose container states none.
        duration: seconds; ``0.0`` when unknown (always for a frame folder).
        width, height: frame size in pixels, before any resizing.
    """

    path: Path
    num_frames: int
    fps: float
    duration: float
    width: int
    height: int


# --------------------------------------------------------------------------------------------
# helpers shared by files and folders


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def list_frame_files(folder: str | os.PathLike) -> list[Path]:
    """The image files of a frame folder in frame order (natural sort: ``2.jpg`` before ``10.jpg``).

    Hidden files and files with other extensions are ignored.
    """
    folder = Path(folder)
    try:
        names = [
            entry.name
            for entry in os.scandir(folder)
            if not entry.name.startswith(".")
            and os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS
            and entry.is_file()
        ]
    except OSError as exc:
        raise VideoReadError(f"{folder}: cannot list the frame folder ({exc}).") from exc
    names.sort(key=_natural_key)
    return [folder / name for name in names]


def is_video(path: str | os.PathLike) -> bool:
    """True for an existing video file with a supported extension or a folder holding images."""
    path = Path(path)
    if path.is_file():
        return path.suffix.lower() in VIDEO_EXTENSIONS
    if path.is_dir():
        try:
            with os.scandir(path) as entries:
                for entry in entries:
                    if (
                        not entry.name.startswith(".")
                        and os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS
                        and entry.is_file()
                    ):
                        return True
        except OSError:
            return False
    return False


def check_path(path: str | os.PathLike) -> None:
    """Cheap checks before any opening (a stat or two): the path exists, is no single image, and
    a file is not empty.

    Raises:
        VideoReadError: naming the path and the problem.
    """
    path = Path(path)
    if not path.exists():
        raise VideoReadError(f"{path}: no such video file or frame folder; check the data root and split list.")
    if path.is_file():
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            raise VideoReadError(f"{path}: is a single image; a video is a video file or a folder of frames.")
        if path.stat().st_size == 0:
            raise VideoReadError(f"{path}: the file is empty (0 bytes); {_HINT_REDO}.")


def _output_size(width: int, height: int, size: int | Sequence[int] | None) -> tuple[int, int]:
    """(out_width, out_height) for the ``size`` argument of :func:`read_frames`."""
    if size is None:
        return width, height
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = int(size)
        if size < 1:
            raise ValueError(f"size must be a positive int or (H, W), got {size}")
        if width <= height:
            return size, max(1, int(round(height * size / width)))
        return max(1, int(round(width * size / height))), size
    try:
        out_h, out_w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be None, an int (short side) or (H, W), got {size!r}") from None
    if out_h < 1 or out_w < 1:
        raise ValueError(f"size must be positive, got {size!r}")
    return out_w, out_h


def _as_index_list(indices) -> list[int]:
    if isinstance(indices, torch.Tensor):
        if indices.is_floating_point():
            raise TypeError("frame indices must be integers, got a floating-point tensor")
        return [int(i) for i in indices.reshape(-1).tolist()]
    if isinstance(indices, np.ndarray):
        if not np.issubdtype(indices.dtype, np.integer):
            raise TypeError(f"frame indices must be integers, got dtype {indices.dtype}")
        return [int(i) for i in indices.reshape(-1).tolist()]
    if isinstance(indices, (int, np.integer)):
        return [int(indices)]
    out = []
    for i in indices:
        if isinstance(i, (float, np.floating)) or isinstance(i, bool):
            raise TypeError(f"frame indices must be integers, got {i!r}")
        out.append(int(i))
    return out


def _check_indices(path: Path, idx: list[int], num_frames: int) -> None:
    bad = [i for i in idx if i < 0 or i >= num_frames]
    if bad:
        raise VideoReadError(
            f"{path}: frame index {bad[0]} is out of range; the video has {num_frames} frames "
            f"(valid indices 0..{num_frames - 1})."
        )


# --------------------------------------------------------------------------------------------
# video files


def _open_container(path: Path):
    try:
        return av.open(str(path), metadata_errors="ignore")
    except av.FFmpegError as exc:
        raise VideoReadError(
            f"{path}: cannot open as a video ({_ffmpeg_reason(exc)}); the file is truncated, corrupt or "
            f"not a video: {_HINT_REDO}."
        ) from None
    except OSError as exc:
        raise VideoReadError(f"{path}: cannot read the file ({exc}).") from None


def _ffmpeg_reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).strip() or type(exc).__name__


def _video_stream(container, path: Path):
    streams = container.streams.video
    if not streams:
        container.close()
        raise VideoReadError(f"{path}: the file has no video stream (audio only or not a video); {_HINT_REDO}.")
    stream = streams[0]
    try:
        ctx = stream.codec_context
        name = ctx.name if ctx is not None else None
    except av.FFmpegError:
        name = None
    if not name:
        container.close()
        raise VideoReadError(
            f"{path}: no decoder for the video stream's codec in this FFmpeg build; re-encode it (H.264)."
        )
    return stream


def _stream_fps(stream) -> float:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            value = float(rate)
            if 0 < value < 1000:
                return value
    return 0.0


def _stream_duration(container, stream) -> float:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return 0.0


@dataclass
class _PacketTable:
    """Presentation timestamps of all video packets, sorted, and which positions are keyframes."""

    pts: list[int]
    keyframes: list[int]  # presentation indices of keyframes, ascending

    def index_of(self, pts: int) -> int | None:
        i = bisect.bisect_left(self.pts, pts)
        if i < len(self.pts) and self.pts[i] == pts:
            return i
        return None

    def keyframe_at_or_before(self, index: int) -> int:
        i = bisect.bisect_right(self.keyframes, index) - 1
        return self.keyframes[i] if i >= 0 else 0


def _demux_table(container, stream, path: Path) -> _PacketTable | None:
    """One demuxing pass (no decoding): packet timestamps and keyframe flags.

    Returns None when the packets carry no timestamps (then frames can only be counted).
    """
    stamps: list[int] = []
    keys: list[bool] = []
    usable = True
    try:
        for packet in container.demux(stream):
            if packet.size == 0 or getattr(packet, "is_discard", False):
                continue
            ts = packet.pts if packet.pts is not None else packet.dts
            if ts is None:
                usable = False
            stamps.append(ts if ts is not None else 0)
            keys.append(bool(packet.is_keyframe))
    except av.FFmpegError:
        pass  # a damaged tail: keep what was read
    if not stamps:
        return _PacketTable([], [])
    if not usable:
        return None
    order = sorted(range(len(stamps)), key=stamps.__getitem__)
    pts = [stamps[i] for i in order]
    keyframes = [j for j, i in enumerate(order) if keys[i]] or [0]
    if keyframes[0] != 0:
        keyframes.insert(0, 0)
    return _PacketTable(pts, keyframes)


def _probe_file(path: Path) -> VideoInfo:
    container = _open_container(path)
    try:
        stream = _video_stream(container, path)
        ctx = stream.codec_context
        width, height = int(ctx.width or 0), int(ctx.height or 0)
        fps = _stream_fps(stream)
        duration = _stream_duration(container, stream)
        frames = int(stream.frames or 0)
        plausible = frames > 0
        if plausible and fps > 0 and duration > 0:
            plausible = _counts_agree(frames, fps * duration)
        if plausible:
            _check_tail(container, stream, path, frames)
        else:
            table = _demux_table(container, stream, path)
            if table is None:  # no timestamps at all: count by decoding
                container.close()
                container = _open_container(path)
                stream = container.streams.video[0]
                frames = sum(1 for _ in _iter_frames(container, stream, path))
            else:
                frames = len(table.pts)
        if frames < 1:
            raise VideoReadError(f"{path}: the video stream holds no frames; {_HINT_REDO}.")
        if width < 1 or height < 1:
            raise VideoReadError(f"{path}: the video stream has no frame size (undecodable); {_HINT_REDO}.")
        if fps <= 0 and duration > 0:
            fps = frames / duration
        if duration <= 0 and fps > 0:
            duration = frames / fps
        return VideoInfo(path=path, num_frames=frames, fps=fps, duration=duration, width=width, height=height)
    finally:
        container.close()


def _check_tail(container, stream, path: Path, declared: int) -> None:
    """Raise when the stream's last packet, as the container's index places it, is not in the file.

    A file cut short keeps an index at its front (MP4 ``movflags=faststart``) that promises the
    lost frames; reading the packet at the stream's end (one seek, no decoding) exposes it. A
    container that cannot seek there (no index) is left to :func:`read_frames`' own check.
    """
    if not stream.duration:
        return
    try:
        container.seek((stream.start_time or 0) + stream.duration, stream=stream, backward=True, any_frame=True)
        found = any(packet.size for packet in itertools.islice(container.demux(stream), 2))
    except av.FFmpegError:
        return
    if not found:
        raise VideoReadError(
            f"{path}: the container declares {declared} frames but the file ends before the last of "
            f"them; the file is truncated: {_HINT_REDO}."
        )


def _iter_frames(container, stream, path: Path) -> Iterator:
    """Decoded frames from the container's current position, with FFmpeg errors made readable.

    A packet the decoder rejects in the middle of the stream is skipped (FFmpeg's own error
    concealment); an error before any frame came out means the stream is undecodable.
    """
    produced = 0
    failures = 0
    try:
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.FFmpegError as exc:
                failures += 1
                if produced == 0 and failures > 8:
                    raise VideoReadError(
                        f"{path}: the video stream cannot be decoded ({_ffmpeg_reason(exc)}); {_HINT_REDO}."
                    ) from None
                continue
            for frame in frames:
                produced += 1
                yield frame
    except av.FFmpegError as exc:
        if produced == 0:
            raise VideoReadError(
                f"{path}: the video stream cannot be read ({_ffmpeg_reason(exc)}); {_HINT_REDO}."
            ) from None
        # a damaged tail: end of stream


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _default_threads() -> int:
    """Decoder threads when the caller does not say: 0 (FFmpeg's automatic choice, all cores) in
    the main process; inside a DataLoader worker the cores divided among the workers of every
    local rank (``LOCAL_WORLD_SIZE`` from torchrun), at least 1."""
    worker = torch.utils.data.get_worker_info()
    if worker is None:
        return 0
    try:
        ranks = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        ranks = 1
    return max(1, _available_cpus() // (max(1, worker.num_workers) * ranks))


def _configure_threads(stream, threads: int | None) -> None:
    """Frame + slice threading with ``threads`` threads (0: automatic); one thread: no threading."""
    if threads is None:
        threads = _default_threads()
    try:
        if threads == 1:
            stream.thread_type = "SLICE"
            stream.thread_count = 1
        else:
            stream.thread_type = "AUTO"
            stream.thread_count = max(0, int(threads))
    except (AttributeError, ValueError, av.FFmpegError):  # pragma: no cover - old PyAV
        pass


def _convert_into(frame, out: np.ndarray) -> None:
    """Write a decoded frame into ``out`` (uint8 [H, W, 3], RGB), scaled by swscale at decode time.

    (Planar ``gbrp`` output would save the later HWC -> CHW transpose, but FFmpeg 8's unscaled
    yuv420p -> gbrp converter leaves the last columns unwritten for widths that are not a
    multiple of 16; ``rgb24`` is right at every width.)
    """
    out_h, out_w = out.shape[:2]
    rgb = frame.reformat(width=out_w, height=out_h, format="rgb24", interpolation="BILINEAR")
    plane = rgb.planes[0]
    rows = np.frombuffer(plane, dtype=np.uint8).reshape(plane.height, plane.line_size)
    out[...] = rows[:out_h, : out_w * 3].reshape(out_h, out_w, 3)


def _to_chw(store: np.ndarray, idx: list[int], targets: list[int]) -> torch.Tensor:
    """[K, H, W, 3] frames of the sorted unique ``targets`` -> uint8 [len(idx), 3, H, W] in ``idx`` order.

    One bulk transpose for the whole clip: much cheaper than one per frame.
    """
    frames = torch.from_numpy(store)
    if idx != targets:  # repeats or another order: gather first (fewer bytes to transpose if repeats)
        slot = {t: k for k, t in enumerate(targets)}
        frames = frames[torch.tensor([slot[i] for i in idx], dtype=torch.int64)]
    return frames.permute(0, 3, 1, 2).contiguous()


def _read_file(
    path: Path,
    idx: list[int],
    size,
    info: VideoInfo,
    mode: str,
    seek_threshold: int,
    threads: int | None,
) -> torch.Tensor:
    out_w, out_h = _output_size(info.width, info.height, size)
    if not idx:
        return torch.empty((0, 3, out_h, out_w), dtype=torch.uint8)
    targets = sorted(set(idx))
    store = np.empty((len(targets), out_h, out_w, 3), dtype=np.uint8)

    # Decide whether seeking can pay off at all before paying for the keyframe index.
    need_table = mode == "seek"
    if mode == "auto":
        previous = 0
        for t in targets:
            if t - previous > seek_threshold:
                need_table = True
                break
            previous = t

    reader = _FileDecoder(path, threads)
    try:
        if need_table:
            reader.build_table()
        filled: set[int] = set()
        last, end = reader.decode(targets, store, filled, mode, seek_threshold)
        if last is None:
            raise VideoReadError(f"{path}: no frame could be decoded; the file is truncated or corrupt: {_HINT_REDO}.")
        missing = [k for k in range(len(targets)) if k not in filled]
        if missing and not _counts_agree(end, info.num_frames):
            raise VideoReadError(
                f"{path}: the container declares {info.num_frames} frames but only {end} could be "
                f"decoded; the file is truncated or corrupt: {_HINT_REDO}."
            )
        # Indices a frame or two past the real end (metadata slightly off): the last frame that exists.
        if missing:
            _convert_into(last, store[missing[0]])
            for k in missing[1:]:
                store[k] = store[missing[0]]
    finally:
        reader.close()
    return _to_chw(store, idx, targets)


class _FileDecoder:
    """One open container plus the bookkeeping to decode requested frames in presentation order."""

    def __init__(self, path: Path, threads: int | None):
        self.path = path
        self.threads = threads
        self.table: _PacketTable | None = None
        self.container = None
        self.stream = None
        self.consumed = False  # the read position is no longer at the start of the file
        self._open()

    def _open(self) -> None:
        if self.container is not None:
            self.container.close()
        self.container = _open_container(self.path)
        self.stream = _video_stream(self.container, self.path)
        _configure_threads(self.stream, self.threads)
        self.consumed = False

    def close(self) -> None:
        if self.container is not None:
            self.container.close()
            self.container = None

    def build_table(self) -> None:
        table = _demux_table(self.container, self.stream, self.path)
        self.consumed = True
        self.table = table if table is not None and table.pts else None

    def _frames_from(self, key: int | None) -> Iterator:
        """Decoded frames from keyframe index ``key`` (None: from the start of the stream)."""
        if key is None:
            if self.consumed:
                self._open()  # a fresh container is the one sure way back to the first frame
            self.consumed = True
            return _iter_frames(self.container, self.stream, self.path)
        self.consumed = True
        self.container.seek(self.table.pts[key], stream=self.stream, backward=True)
        return _iter_frames(self.container, self.stream, self.path)

    def _index(self, frame, pos: int) -> int:
        if self.table is not None and frame.pts is not None:
            index = self.table.index_of(frame.pts)
            if index is not None:
                return index
        return pos

    def decode(self, targets: list[int], store: np.ndarray, filled: set, mode: str, seek_threshold: int):
        """Decode the sorted unique ``targets`` into ``store[k]`` for ``targets[k]``.

        ``filled`` receives the slots ``k`` written. Returns the last decoded frame (None if none
        could be decoded) and the index one past it (the frames the stream held when it ended
        before the last target). A target the stream lacks (a frame the decoder dropped) gets the
        nearest earlier frame; targets past the end of the stream are left unfilled for the caller.
        """
        slot = {t: k for k, t in enumerate(targets)}
        got = set()  # frame indices written
        can_seek = self.table is not None and mode != "forward"
        frames = None
        pos = 0  # index of the next frame the decoder should produce
        floor = 0  # frames below this index are leftovers of a seek: skipped
        prev = None  # last decoded frame
        fresh = False  # no frame decoded since the last seek yet
        k = 0
        while k < len(targets):
            target = targets[k]
            if target in got:
                k += 1
                continue
            seek_to = None
            if can_seek:
                key = self.table.keyframe_at_or_before(target)
                if mode == "seek" or key - pos > seek_threshold:
                    seek_to = key
            if frames is None or seek_to is not None:
                frames = self._frames_from(seek_to)
                pos = floor = seek_to or 0
                fresh = seek_to is not None
            reached = restart = False
            for frame in frames:
                index = self._index(frame, pos)
                if fresh and index > target:
                    restart = True  # the seek landed past the target: decode from the start instead
                    break
                if index < floor:
                    continue
                fresh = False
                if index in slot and index not in got:
                    _convert_into(frame, store[slot[index]])
                    got.add(index)
                    filled.add(slot[index])
                if index > target and target not in got:
                    _convert_into(prev if prev is not None else frame, store[slot[target]])
                    got.add(target)
                    filled.add(slot[target])
                prev = frame
                pos = index + 1
                if index >= target:
                    reached = True
                    break
            if restart:
                can_seek = False
                frames = None
                self.consumed = True
                continue
            if not reached:
                return prev, pos  # end of stream: the caller judges what is left
            k += 1
        return prev, pos


# --------------------------------------------------------------------------------------------
# frame folders


def _probe_folder(path: Path) -> VideoInfo:
    files = list_frame_files(path)
    if not files:
        raise VideoReadError(
            f"{path}: the frame folder holds no images ({', '.join(IMAGE_EXTENSIONS)}); re-extract the video."
        )
    width, height = _image_size(files[0])
    return VideoInfo(path=path, num_frames=len(files), fps=0.0, duration=0.0, width=width, height=height)


def _image_size(file: Path) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as img:
            return img.size
    except (OSError, UnidentifiedImageError) as exc:
        raise VideoReadError(f"{file}: cannot read the image ({exc}); re-extract the video.") from None


def _load_image(file: Path, size) -> np.ndarray:
    """One frame image as uint8 [H, W, 3] (Pillow: libjpeg-turbo / libpng).

    A JPEG that must shrink is decoded at a reduced scale first where libjpeg can (DCT scaling by
    1/2, 1/4, 1/8, never below the target size), then resized with Pillow's antialiasing filter.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as img:
            out_w, out_h = _output_size(img.width, img.height, size)
            if (out_w, out_h) != img.size and img.format == "JPEG":
                img.draft("RGB", (out_w, out_h))
            if img.mode != "RGB":
                img = img.convert("RGB")
            if img.size != (out_w, out_h):
                img = img.resize((out_w, out_h), Image.BILINEAR)
            array = np.asarray(img)  # decodes
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        raise VideoReadError(f"{file}: cannot decode the image ({exc}); re-extract the video.") from None
    if array.ndim != 3 or array.shape[2] != 3:  # pragma: no cover - defensive
        raise VideoReadError(f"{file}: unexpected image layout {array.shape}; re-extract the video.")
    return array


def _read_folder(path: Path, idx: list[int], size, info: VideoInfo | None) -> torch.Tensor:
    files = list_frame_files(path)
    if not files:
        raise VideoReadError(f"{path}: the frame folder holds no images; re-extract the video.")
    _check_indices(path, idx, len(files))
    if not idx:
        width, height = (info.width, info.height) if info is not None else _image_size(files[0])
        out_w, out_h = _output_size(width, height, size)
        return torch.empty((0, 3, out_h, out_w), dtype=torch.uint8)
    targets = sorted(set(idx))
    store = None
    for k, i in enumerate(targets):
        array = _load_image(files[i], size)
        if store is None:
            store = np.empty((len(targets), *array.shape), dtype=np.uint8)
        elif array.shape != store.shape[1:]:
            raise VideoReadError(
                f"{path}: frame {files[i].name} is {array.shape[1]}x{array.shape[0]}, earlier frames are "
                f"{store.shape[2]}x{store.shape[1]}; re-extract the video or pass size=(H, W)."
            )
        store[k] = array
    return _to_chw(store, idx, targets)


# --------------------------------------------------------------------------------------------
# public API


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Frame count, frame rate, duration and size of a video file or frame folder.

    Video files: the container's metadata (frame count, average frame rate, duration). When the
    frame count is missing (``0``, usual for WebM/MKV) or disagrees with ``duration * fps`` by more
    than 5 % (and 2 frames), the frames are counted by demuxing the packets (no decoding; decoding
    only when the packets carry no timestamps at all). A stated count is checked by reading the
    packet at the stream's end (one seek): a file cut short behind an index at its front
    (``movflags=faststart``) fails here. What the probe misses, :func:`read_frames` catches when
    the stream ends far before the stated count.

    Frame folders: ``num_frames`` is the number of image files; ``fps`` and ``duration`` are
    ``0.0`` (unknown: a folder of images carries no frame rate); the size is the first image's.

    Results are cached per process, keyed by the path, its modification time and size (a file
    or folder that changes is probed again): a dataset that probes a video at every epoch pays
    once per DataLoader worker.

    Raises:
        VideoReadError: missing, empty, unreadable or undecodable input.
    """
    path = Path(path)
    check_path(path)
    try:
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size, stat.st_ino)
    except OSError:
        key = None
    if key is not None:
        cached = _PROBE_CACHE.get(key)
        if cached is not None:
            return cached
    info = _probe_folder(path) if path.is_dir() else _probe_file(path)
    if key is not None:
        if len(_PROBE_CACHE) >= _PROBE_CACHE_SIZE:
            _PROBE_CACHE.pop(next(iter(_PROBE_CACHE)))  # oldest first
        _PROBE_CACHE[key] = info
    return info


_PROBE_CACHE: dict[tuple, VideoInfo] = {}
_PROBE_CACHE_SIZE = 100_000  # about 30 MB at most




def read_frames(
    path: str | os.PathLike,
    indices: Sequence[int] | torch.Tensor,
    size: int | tuple[int, int] | None = None,
    info: VideoInfo | None = None,
    *,
    mode: str = "auto",
    seek_threshold: int | None = None,
    threads: int | None = None,
) -> torch.Tensor:
    """The frames at ``indices`` as ``uint8 [len(indices), 3, H, W]`` (RGB), in the order asked.

    Args:
        path: a video file or a frame folder.
        indices: 0-based presentation-order frame indices, any order, repeats allowed (a list, a
            1-D tensor or array).
        size: ``None`` keeps the resolution; an ``int`` scales the short side to ``size`` keeping
            the aspect ratio (long side rounded); ``(H, W)`` scales to exactly that size. Scaling
            happens per frame as it is converted from the decoder (swscale, bilinear with
            antialiasing; JPEG frames shrink by DCT scaling, then Pillow's antialiased resize),
            so a large video never costs its full resolution in memory.
        info: the :func:`probe_video` result of ``path`` if the caller has it (saves a probe).
        mode: ``"auto"`` (default) decodes forward and seeks only when it skips more than
            ``seek_threshold`` frames; ``"forward"`` never seeks (one pass from the first frame);
            ``"seek"`` seeks to the keyframe at or before every distinct requested frame, even
            backwards (slow; for tests and benchmarks). Ignored for frame folders.
        seek_threshold: frames a seek must skip to be worth it; default :data:`SEEK_THRESHOLD`.
        threads: decoder threads (0: FFmpeg's choice). ``None``: all cores in the main process;
            inside a DataLoader worker, the cores divided among the workers (of all local ranks),
            so that workers do not oversubscribe the machine.

    Returns:
        uint8 tensor ``[len(indices), 3, H, W]``.

    Indices are checked against the probed frame count (``info.num_frames``): a negative index
    or one >= that count raises. If the stream ends before an index, the video is damaged
    (:class:`VideoReadError` stating the declared and decoded counts) unless the two counts agree
    within 5 % (and 2 frames), a metadata rounding: then such indices return the last real frame.
    A genuinely short video (fewer frames than a clip asks for, honestly declared) is no error.

    Raises:
        VideoReadError: missing, empty, truncated or undecodable input, no video stream, an
            index out of range, or a stream far shorter than its container declares.
    """
    path = Path(path)
    if mode not in _READ_MODES:
        raise ValueError(f"mode must be one of {_READ_MODES}, got {mode!r}")
    idx = _as_index_list(indices)
    if info is None:
        check_path(path)
    elif not path.exists():
        check_path(path)
    if path.is_dir():
        return _read_folder(path, idx, size, info)
    if info is None:
        info = probe_video(path)
    _check_indices(path, idx, info.num_frames)
    threshold = SEEK_THRESHOLD if seek_threshold is None else max(0, int(seek_threshold))
    return _read_file(path, idx, size, info, mode, threshold, threads)
