"""Tests of stsampler.data.folders: the support folder's classes and videos, and query expansion.

A video file is recognised by its extension and a frame folder by the images in it, so empty
placeholder files stand in for real videos here.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from stsampler.data.folders import collect_queries, scan_support_dir
from stsampler.errors import DatasetError


def _video(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def _frames(folder: Path, count: int = 2) -> Path:
    for i in range(count):
        _video(folder / f"{i + 1:05d}.png")
    return folder


def _support(root: Path, shots: dict[str, int]) -> Path:
    for name, k in shots.items():
        for j in range(k):
            _video(root / name / f"{name}{j}.mp4")
    return root


def test_support_dir_lists_classes_and_videos_in_name_order(tmp_path: Path) -> None:
    root = _support(tmp_path / "s", {"wave": 2, "jump": 1})
    _frames(root / "jump" / "clip_frames")
    (root / "notes.txt").write_text("ignored")
    (root / "wave" / ".hidden").write_text("ignored")
    _support(root, {".cache": 1})
    found = scan_support_dir(root)
    assert list(found) == ["jump", "wave"]
    assert found["jump"] == [root / "jump" / "clip_frames", root / "jump" / "jump0.mp4"]
    assert [p.name for p in found["wave"]] == ["wave0.mp4", "wave1.mp4"]


def test_missing_support_dir(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        scan_support_dir(tmp_path / "nope")


def test_empty_class_folder_is_named(tmp_path: Path) -> None:
    root = _support(tmp_path / "s", {"wave": 1, "jump": 1})
    (root / "clap").mkdir()
    with pytest.raises(DatasetError, match="'clap' has no example video"):
        scan_support_dir(root)


def test_one_class_is_not_few_shot(tmp_path: Path) -> None:
    root = _support(tmp_path / "s", {"wave": 2})
    with pytest.raises(DatasetError, match=r"at least 2 action classes.*only 'wave'"):
        scan_support_dir(root)


def test_non_video_file_is_named(tmp_path: Path) -> None:
    root = _support(tmp_path / "s", {"wave": 1, "jump": 1})
    (root / "jump" / "readme.txt").write_text("x")
    with pytest.raises(DatasetError, match=r"readme\.txt: not a video file"):
        scan_support_dir(root)


def test_images_directly_in_a_class_folder_are_refused(tmp_path: Path) -> None:
    root = _support(tmp_path / "s", {"wave": 1, "jump": 1})
    _video(root / "jump" / "00001.jpg")
    with pytest.raises(DatasetError, match=r"holds images directly"):
        scan_support_dir(root)


def test_video_outside_class_folder(tmp_path: Path) -> None:
    root = _support(tmp_path / "s", {"wave": 1, "jump": 1})
    _video(root / "stray.mp4")
    with pytest.raises(DatasetError, match=r"stray\.mp4: a video at the top"):
        scan_support_dir(root)


def test_collect_queries_recurses_and_keeps_given_order(tmp_path: Path) -> None:
    a = _video(tmp_path / "q" / "a.mp4")
    b = _frames(tmp_path / "q" / "deep" / "b")
    (tmp_path / "q" / "deep" / "c.txt").write_text("x")
    _video(tmp_path / "q" / ".hidden" / "d.mp4")
    assert collect_queries([tmp_path / "q"]) == [a, b]
    assert collect_queries(b) == [b]
    assert collect_queries(str(a)) == [a]
    assert collect_queries([b, a]) == [b, a]


@pytest.mark.parametrize(
    "name, message",
    [("missing.mp4", "no such file"), ("q/c.txt", "not a video"), ("q/empty", "no video file or frame folder")],
)
def test_collect_queries_names_a_bad_path(tmp_path: Path, name: str, message: str) -> None:
    (tmp_path / "q" / "empty").mkdir(parents=True)
    (tmp_path / "q" / "c.txt").write_text("x")
    with pytest.raises(DatasetError, match=message) as info:
        collect_queries([tmp_path / name])
    assert str(tmp_path / name) in str(info.value)
