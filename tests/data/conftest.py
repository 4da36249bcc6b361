"""Shared fixtures for the data tests: tiny videos and frame folders made on the fly.

Generic on purpose; any test under tests/data may use them:

* ``make_frames(num_frames, height, width, seed)`` -> uint8 numpy ``[N, H, W, 3]`` whose frames all
  differ (a moving block, a per-frame stripe code, a shifting gradient).
* ``write_video(path, frames, fps=25, codec="libx264", gop=12, bframes=2, lossless=False)`` writes
  an H.264 ``.mp4`` (or ``codec="ffv1"`` for a bit-exact RGB ``.mkv``) and returns the path.
* ``write_frame_folder(folder, frames, ext=".png")`` writes ``00000001.png ...`` (TRX layout).
* ``decode_all(path)`` -> uint8 ``[N, H, W, 3]``: every frame of a video by one plain PyAV pass
  (the reference the reader is checked against).
* ``tiny_video``: a 48-frame 96x64 H.264 mp4 (keyframe every 12 frames, B-frames), session-wide.
* ``tiny_frame_folder``: its frames decoded once and written as PNGs (so equal to the video's).
* ``lossless_video``: (path, source frames) of a 40-frame 80x48 FFV1 RGB mkv (decodes bit-exactly).
* ``shared_videos``: the ``shared/videos`` folder with the three real clips (skips if absent).
"""
from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def _make_frames(num_frames: int = 48, height: int = 64, width: int = 96, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(3,), dtype=np.int64)
    yy, xx = np.mgrid[0:height, 0:width]
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    block = max(4, min(height, width) // 4)
    for t in range(num_frames):
        img = np.empty((height, width, 3), dtype=np.int64)
        img[..., 0] = (xx * 2 + t * 5 + base[0]) % 256
        img[..., 1] = (yy * 3 + t * 3 + base[1]) % 256
        img[..., 2] = (xx + yy + t * 7 + base[2]) % 256
        # a block that moves across the frame
        top = (t * 3) % max(1, height - block)
        left = (t * 5) % max(1, width - block)
        img[top : top + block, left : left + block] = (255, 255, 255)
        # the frame number as big black/white cells along the bottom edge
        cell = max(2, width // 8)
        for bit in range(8):
            value = 255 if (t >> bit) & 1 else 0
            img[height - cell :, bit * cell : (bit + 1) * cell] = value
        frames[t] = img.astype(np.uint8)
    return frames


def _write_video(
    path: str | os.PathLike,
    frames: np.ndarray,
    fps: int = 25,
    codec: str = "libx264",
    gop: int = 12,
    bframes: int = 2,
    lossless: bool = False,
) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = frames.shape[1:3]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width = width
        stream.height = height
        if codec == "ffv1":
            stream.pix_fmt = "bgr0"  # packed RGB: bit-exact round trip
        elif codec == "libx264":
            stream.pix_fmt = "yuv444p" if lossless else "yuv420p"
            params = f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes={bframes}"
            stream.options = {"x264-params": params, **({"qp": "0"} if lossless else {"crf": "18"})}
        else:
            stream.pix_fmt = "yuv420p"
            stream.codec_context.gop_size = gop
        for array in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _write_frame_folder(folder: str | os.PathLike, frames: np.ndarray, ext: str = ".png") -> Path:
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i, array in enumerate(frames, start=1):
        Image.fromarray(array).save(folder / f"{i:08d}{ext}")
    return folder


def _decode_all(path: str | os.PathLike) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


@pytest.fixture(scope="session")
def make_frames():
    return _make_frames


@pytest.fixture(scope="session")
def write_video():
    return _write_video


@pytest.fixture(scope="session")
def write_frame_folder():
    return _write_frame_folder


@pytest.fixture(scope="session")
def decode_all():
    return _decode_all


@pytest.fixture(scope="session")
def tiny_video(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny_video")
    return _write_video(folder / "tiny.mp4", _make_frames(48, 64, 96), gop=12, bframes=2)


@pytest.fixture(scope="session")
def tiny_frame_folder(tmp_path_factory, tiny_video) -> Path:
    folder = tmp_path_factory.mktemp("tiny_frames") / "tiny"
    return _write_frame_folder(folder, _decode_all(tiny_video))


@pytest.fixture(scope="session")
def lossless_video(tmp_path_factory) -> tuple[Path, np.ndarray]:
    frames = _make_frames(40, 48, 80, seed=1)
    folder = tmp_path_factory.mktemp("lossless_video")
    return _write_video(folder / "lossless.mkv", frames, codec="ffv1", gop=10), frames


@pytest.fixture(scope="session")
def shared_videos() -> Path:
    candidates = [os.environ.get("STSAMPLER_SHARED"), REPO_ROOT.parent / "shared"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "videos" / "bikes.mp4").is_file():
            return Path(candidate) / "videos"
    pytest.skip("shared/videos (the real test clips) not found beside the checkout; set STSAMPLER_SHARED")
