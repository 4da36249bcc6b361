"""extract_frames: layout, resizing, resumability, temporary folders, failures."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from stsampler.data import extract as extract_mod
from stsampler.data.extract import ExtractReport, extract_frames, find_videos
from stsampler.data.video import probe_video, read_frames


@pytest.fixture()
def video_tree(tmp_path, make_frames, write_video):
    src = tmp_path / "videos"
    write_video(src / "class_a" / "v1.mp4", make_frames(12, 48, 64, seed=1), gop=6)
    write_video(src / "class_a" / "v2.mp4", make_frames(9, 64, 48, seed=2), gop=6)
    write_video(src / "class_b" / "v3.mp4", make_frames(7, 40, 40, seed=3), gop=6)
    (src / "class_b" / "bad.mp4").write_bytes(b"\x00garbage" * 100)
    (src / "class_b" / "readme.txt").write_text("not a video")
    return src


def folders(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.glob("*/*"))


def test_layout_sizes_and_failures(video_tree, tmp_path):
    dst = tmp_path / "frames"
    report = extract_frames(video_tree, dst, short_side=32, progress=False)
    assert isinstance(report, ExtractReport)
    assert (report.done, report.skipped) == (3, 0)
    assert len(report.failed) == 1
    bad, message = report.failed[0]
    assert bad == video_tree / "class_b" / "bad.mp4" and str(bad) in message
    assert folders(dst) == ["class_a/v1", "class_a/v2", "class_b/v3"]
    assert sorted(p.name for p in (dst / "class_a" / "v1").iterdir()) == [f"{i:08d}.jpg" for i in range(1, 13)]
    expected = [("class_a/v1", 12, 43, 32), ("class_a/v2", 9, 32, 43), ("class_b/v3", 7, 32, 32)]
    for name, frames, width, height in expected:
        info = probe_video(dst / name)
        assert (info.num_frames, info.width, info.height) == (frames, width, height)
    # JPEG frames look like the video's frames at the same size
    from_video = read_frames(video_tree / "class_a" / "v1.mp4", [0, 5, 11], size=32).float()
    from_jpeg = read_frames(dst / "class_a" / "v1", [0, 5, 11]).float()
    assert (from_video - from_jpeg).abs().mean() < 8.0
    assert not list(dst.rglob(".*"))  # no temporary folder left


def test_second_run_skips_finished_videos(video_tree, tmp_path):
    dst = tmp_path / "frames"
    extract_frames(video_tree, dst, short_side=32, progress=False)
    stamp = (dst / "class_a" / "v1" / "00000001.jpg").stat().st_mtime_ns
    again = extract_frames(video_tree, dst, short_side=32, progress=False)
    assert (again.done, again.skipped, len(again.failed)) == (0, 3, 1)
    assert (dst / "class_a" / "v1" / "00000001.jpg").stat().st_mtime_ns == stamp


def test_target_appears_only_complete(video_tree, tmp_path, monkeypatch):
    dst = tmp_path / "frames"
    renamed = []
    real_rename = os.rename

    def checking_rename(a, b):
        a, b = Path(a), Path(b)
        assert a.parent == b.parent and a.name.startswith(f".{b.name}.partial-")
        assert not b.exists()
        renamed.append((b.name, len(list(a.iterdir()))))
        real_rename(a, b)

    monkeypatch.setattr(extract_mod.os, "rename", checking_rename)
    extract_frames(video_tree, dst, short_side=32, progress=False)
    assert sorted(renamed) == [("v1", 12), ("v2", 9), ("v3", 7)]


def test_failure_mid_video_leaves_no_folder(video_tree, tmp_path, monkeypatch):
    from PIL import Image

    dst = tmp_path / "frames"
    real_save = Image.Image.save
    calls = {"n": 0}

    def flaky_save(self, fp, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError("No space left on device")
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", flaky_save)
    report = extract_frames(video_tree, dst, short_side=32, progress=False)
    assert report.done == 2 and len(report.failed) == 2
    assert any("No space left" in message for _, message in report.failed)
    assert not (dst / "class_a" / "v1").exists()
    assert not list(dst.rglob(".*"))
    monkeypatch.setattr(Image.Image, "save", real_save)
    retry = extract_frames(video_tree, dst, short_side=32, progress=False)
    assert (retry.done, retry.skipped) == (1, 2)
    assert probe_video(dst / "class_a" / "v1").num_frames == 12


def test_interrupted_run_resumes(video_tree, tmp_path, monkeypatch):
    dst = tmp_path / "frames"
    # a run killed hard (no cleanup) leaves a hidden partial folder behind
    stale = dst / "class_a" / ".v2.partial-999-deadbeef"
    stale.mkdir(parents=True)
    (stale / "00000001.jpg").write_bytes(b"half")
    # an interrupted run (Ctrl-C) cleans up its own temporary folder
    real = extract_mod.extract_video

    def interrupted(video, target, *args, **kwargs):
        if Path(video).name == "v3.mp4":
            raise KeyboardInterrupt
        return real(video, target, *args, **kwargs)

    monkeypatch.setattr(extract_mod, "extract_video", interrupted)
    with pytest.raises(KeyboardInterrupt):
        extract_frames(video_tree, dst, short_side=32, progress=False)
    monkeypatch.setattr(extract_mod, "extract_video", real)
    assert folders(dst) == ["class_a/v1", "class_a/v2"]
    assert not stale.exists()  # removed when v2 was extracted
    report = extract_frames(video_tree, dst, short_side=32, progress=False)
    assert (report.done, report.skipped) == (1, 2)
    assert folders(dst) == ["class_a/v1", "class_a/v2", "class_b/v3"]


def test_empty_target_folder_is_redone(video_tree, tmp_path):
    dst = tmp_path / "frames"
    (dst / "class_a" / "v1").mkdir(parents=True)
    report = extract_frames(video_tree, dst, short_side=32, progress=False)
    assert report.done == 3
    assert probe_video(dst / "class_a" / "v1").num_frames == 12


def test_parallel_workers(video_tree, tmp_path):
    dst = tmp_path / "frames"
    report = extract_frames(video_tree, dst, short_side=24, workers=2, progress=False)
    assert (report.done, report.skipped, len(report.failed)) == (3, 0, 1)
    assert probe_video(dst / "class_b" / "v3").num_frames == 7
    assert not list(dst.rglob(".*"))


def test_keep_size_and_argument_checks(video_tree, tmp_path):
    dst = tmp_path / "frames"
    extract_frames(video_tree, dst, short_side=0, progress=False)
    assert read_frames(dst / "class_a" / "v1", [0]).shape == (1, 3, 48, 64)
    with pytest.raises(ValueError):
        extract_frames(video_tree, video_tree / "frames", progress=False)
    with pytest.raises(Exception, match="no such folder"):
        extract_frames(tmp_path / "missing", dst, progress=False)
    assert [p.name for p in find_videos(video_tree)] == ["v1.mp4", "v2.mp4", "bad.mp4", "v3.mp4"]
