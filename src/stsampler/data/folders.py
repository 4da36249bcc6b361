"""Folders of the user's own videos: a support folder of labelled examples, and query paths.

A support folder holds one sub-folder per action with 1..K example videos (files or frame
folders); queries are video files, frame folders, or folders searched for them. Both are read by
``stsampler predict`` (:class:`stsampler.engine.predict.Predictor`).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from stsampler.data.video import IMAGE_EXTENSIONS, is_video
from stsampler.errors import DatasetError

__all__ = ["collect_queries", "scan_support_dir"]


def _visible(path: Path) -> list[Path]:
    """Entries of a folder, hidden ones (``.name``) left out, in name order."""
    return sorted(p for p in path.iterdir() if not p.name.startswith("."))


def scan_support_dir(support_dir: str | os.PathLike) -> dict[str, list[Path]]:
    """The example videos of a support folder, class name -> videos (both in name order).

    Each visible sub-folder is a class; each visible entry of a class folder must be a video file
    (:data:`stsampler.data.video.VIDEO_EXTENSIONS`) or a frame folder. Other files at the top level
    (notes, the embedding cache) are ignored.

    Raises:
        DatasetError: the folder is missing, a class folder is empty or holds something that is
            not a video, a video sits at the top level, or there are fewer than two classes.
    """
    root = Path(support_dir)
    if not root.is_dir():
        raise DatasetError(
            f"{root}: the support folder does not exist (or is not a folder); make one sub-folder per "
            "action holding 1..K example videos of it."
        )
    classes: dict[str, list[Path]] = {}
    for entry in _visible(root):
        if not entry.is_dir():
            if is_video(entry):
                raise DatasetError(
                    f"{entry}: a video at the top of the support folder has no class; move it into the "
                    "sub-folder named after its action."
                )
            continue
        classes[entry.name] = _class_videos(entry)
    if len(classes) < 2:
        found = f"only {next(iter(classes))!r}" if classes else "none"
        raise DatasetError(
            f"{root}: few-shot prediction needs at least 2 action classes (sub-folders) in the support "
            f"folder, found {found}; add a sub-folder with examples of each action to tell apart."
        )
    return classes


def _class_videos(folder: Path) -> list[Path]:
    """The videos of one class folder; raises DatasetError for an empty folder or a non-video entry."""
    videos = []
    for entry in _visible(folder):
        if is_video(entry):
            videos.append(entry)
        elif entry.suffix.lower() in IMAGE_EXTENSIONS:
            raise DatasetError(
                f"{folder}: holds images directly; put each video's frames in their own sub-folder "
                f"({folder}/<video>/00001.jpg ...)."
            )
        else:
            raise DatasetError(
                f"{entry}: not a video file or frame folder (in the support class {folder.name!r}); "
                "remove it or convert it to a video."
            )
    if not videos:
        raise DatasetError(
            f"{folder}: the support class {folder.name!r} has no example video; add at least one or "
            "remove the folder."
        )
    return videos


def collect_queries(queries: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """Expand query arguments (one path or several): a video file or frame folder stays as is; any
    other folder gives all the videos below it (recursively, in path order).

    Raises:
        DatasetError: a path is missing, is not a video, or is a folder without any video.
    """
    if isinstance(queries, (str, os.PathLike)):
        queries = [queries]
    found: list[Path] = []
    for query in map(Path, queries):
        if is_video(query):
            found.append(query)
        elif query.is_dir():
            below = _videos_below(query)
            if not below:
                raise DatasetError(f"{query}: no video file or frame folder in this folder or below it.")
            found.extend(below)
        elif query.exists():
            raise DatasetError(f"{query}: not a video file or frame folder; pass videos or folders of videos.")
        else:
            raise DatasetError(f"{query}: no such file or folder.")
    return found


def _videos_below(folder: Path) -> list[Path]:
    videos = []
    for root, dirs, files in os.walk(folder):
        here = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in list(dirs):
            if is_video(here / name):
                videos.append(here / name)
                dirs.remove(name)
        videos.extend(here / f for f in files if not f.startswith(".") and is_video(here / f))
    return sorted(videos)
