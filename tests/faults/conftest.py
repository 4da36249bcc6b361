"""Shared fixtures of the fault matrix: a tiny synthetic dataset, damaged copies of its videos, and
the command line run in-process.

* ``dataset``: a fresh copy (per test) of a synthetic dataset of 6 classes x 3 videos (8 frames,
  32x32) with class-disjoint lists of 2 classes each: ``dataset/videos``, ``dataset/splits``.
* ``run_cli(*argv)`` -> ``(exit_code, stdout, stderr)`` of ``stsampler ARGV``; it asserts that no
  traceback was printed.
* ``damage(path, kind)`` rewrites a video in place: ``zero-byte``, ``truncated`` (index at the end,
  lost), ``faststart-truncated`` (index at the front, 30 % of the bytes kept), ``text-renamed`` or
  ``one-frame`` (legal: a video may be that short).
"""
from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

from stsampler.cli import main
from stsampler.data.synthetic import SynthConfig, generate_dataset


@pytest.fixture(scope="session")
def synth_source(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fault_synth")
    config = SynthConfig(
        num_classes=6, videos_per_class=3, num_frames=8, height=32, width=32, seed=3, split_fractions=(1, 1, 1)
    )
    return generate_dataset(out, config, progress=False)


@pytest.fixture
def dataset(synth_source, tmp_path) -> Path:
    return Path(shutil.copytree(synth_source, tmp_path / "data"))


@pytest.fixture
def run_cli(capsys) -> Callable[..., tuple[int, str, str]]:
    def run(*argv) -> tuple[int, str, str]:
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err
        return code, out, err

    return run


def _faststart_copy(src: Path, dst: Path) -> None:
    """Remux ``src`` with its index (moov) at the front of the file."""
    with av.open(str(src)) as source, av.open(str(dst), "w", format="mp4", options={"movflags": "faststart"}) as target:
        stream = target.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(source.streams.video[0]):
            if packet.dts is None:
                continue
            packet.stream = stream
            target.mux(packet)


def _one_frame_copy(src: Path, dst: Path) -> None:
    """An H.264 mp4 holding only the first frame of ``src``."""
    with av.open(str(src)) as source:
        first = next(source.decode(video=0)).to_ndarray(format="rgb24")
    with av.open(str(dst), "w") as target:
        stream = target.add_stream("libx264", rate=16)
        stream.height, stream.width = first.shape[:2]
        stream.pix_fmt = "yuv420p"
        target.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(first), format="rgb24")))
        target.mux(stream.encode(None))


def _damage(path: Path, kind: str) -> None:
    data = path.read_bytes()
    if kind == "zero-byte":
        path.write_bytes(b"")
    elif kind == "truncated":  # index at the end (the synthetic writer's layout): lost with the tail
        path.write_bytes(data[: len(data) // 2])
    elif kind == "faststart-truncated":  # index at the front, only the first 30 % of the bytes kept
        full = path.with_name("full.tmp")
        _faststart_copy(path, full)
        whole = full.read_bytes()
        full.unlink()
        path.write_bytes(whole[: int(0.3 * len(whole))])
    elif kind == "text-renamed":
        path.write_text("class,video\nthis is a csv file saved as .mp4\n")
    elif kind == "one-frame":
        copy = path.with_name("copy.tmp")
        shutil.move(path, copy)
        _one_frame_copy(copy, path)
        copy.unlink()
    else:
        raise ValueError(kind)


@pytest.fixture(scope="session")
def damage() -> Callable[[Path, str], None]:
    return _damage
