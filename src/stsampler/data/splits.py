"""Few-shot split lists: parsing, the benchmark registry, checksummed download, checks, partitions.

A split list holds one ``class/video_id`` per line (the format of the CMN, OTAM and ARN splits
distributed with TRX and TA2N): the class name is everything before the FIRST ``/`` (it may
contain spaces, e.g. Kinetics ``air drumming/-VtLx-mcPds_000012_000022``), the video id is the
rest; LF or CRLF line ends. A benchmark directory holds ``trainlist03.txt``, ``vallist03.txt`` and
``testlist03.txt`` (:data:`SPLIT_FILES`), whose class sets are disjoint.

A video listed twice, in one list or in two lists of a directory, would let an episode hold the
same video as support and query (an inflated accuracy): both are errors naming the lines.

On disk a video ``class/video_id`` is ``data_root/class/video_id.<ext>`` for any extension in
:data:`stsampler.data.video.VIDEO_EXTENSIONS`, or a frame folder ``data_root/class/video_id/``
holding images. Videos that vanished (Kinetics clips leave YouTube) are reported, never fatal.
"""
from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from stsampler.data.video import VIDEO_EXTENSIONS, is_video, probe_video
from stsampler.errors import DatasetError, VideoReadError
from stsampler.io import atomic_write, atomic_write_text, file_sha256

__all__ = [
    "SPLIT_FILES",
    "BenchmarkSpec",
    "BENCHMARKS",
    "default_splits_root",
    "read_split_list",
    "format_split_list",
    "write_split_list",
    "fetch_splits",
    "VideoItem",
    "Split",
    "load_split",
    "split_dir_for",
    "load_benchmark_split",
    "check_split_dir",
    "check_problems",
    "split_class_names",
]

SPLIT_FILES = {"train": "trainlist03.txt", "val": "vallist03.txt", "test": "testlist03.txt"}

_RAW = "https://raw.githubusercontent.com"
_TRX = f"{_RAW}/tobyperrett/trx/c5c23ec0bda1e47a5ce7f4f58a09e6fbee39dc86/splits"
_TA2N_KINETICS = f"{_RAW}/R00Kie-Liu/TA2N/113302a1a0ca9b17f37da5ab2e4051bedde08ee4/splits"
_TA2N_SSV2 = f"{_RAW}/R00Kie-Liu/TA2N/0e2a77bec67ab6aa2d4acd80526a1afd2b048fb8/splits"
_SAMPLER = f"{_RAW}/R00Kie-Liu/Sampler/3f204491e264f68f0c4c599a132b4f6c952fb59e/ActivityNet"


@dataclass(frozen=True)
class BenchmarkSpec:
    """A benchmark's split lists and what they must contain.

    Attributes:
        name: registry key, e.g. ``"kinetics100"``.
        description: what the split is and where its lists come from.
        classes: split name -> expected number of classes.
        files: list file name (as stored locally) -> download URL; an empty URL means no public
            address could be confirmed and the file must be copied in by hand.
        sha256: list file name -> hex digest of the published file.
        flip: whether horizontal flipping keeps the label (False for SSv2, where flipping turns
            "pushing something from left to right" into another class).
    """

    name: str
    description: str
    classes: dict[str, int]
    files: dict[str, str]
    sha256: dict[str, str]
    flip: bool = True


def _load_checksums() -> dict[str, dict[str, str]]:
    text = resources.files("stsampler.data").joinpath("checksums.json").read_text(encoding="utf-8")
    return json.loads(text)


_CHECKSUMS = _load_checksums()
_FSAR_CLASSES = {"train": 64, "val": 12, "test": 24}


def _spec(name: str, description: str, classes: dict[str, int], urls: dict[str, str], flip: bool = True):
    return BenchmarkSpec(name, description, dict(classes), dict(urls), dict(_CHECKSUMS[name]), flip)


def _per_split(base: str) -> dict[str, str]:
    return {local: f"{base}/{local}" for local in SPLIT_FILES.values()}


BENCHMARKS: dict[str, BenchmarkSpec] = {
    spec.name: spec
    for spec in (
        _spec(
            "kinetics100",
            "Kinetics-100, the CMN split (100 Kinetics-400 classes, 100 clips each); lists as "
            "published in the TA2N repository (train, test) and the TRX repository (val).",
            _FSAR_CLASSES,
            {
                "trainlist03.txt": f"{_TA2N_KINETICS}/kinetics_CMN/trainlist03.txt",
                "vallist03.txt": f"{_TRX}/kinetics_CMN/vallist03.txt",
                "testlist03.txt": f"{_TA2N_KINETICS}/kinetics_CMN/testlist03.txt",
            },
        ),
        _spec(
            "ssv2-small",
            "SSv2-small, the CMN split of Something-Something v2 with anonymised class folders "
            "(trainN/valN/testN); lists as published in the TA2N repository. The address of "
            "testlist03.txt (the same folder) could not be checked offline; its sha256 guards it, "
            "and if the download fails, copy the file into the split directory by hand.",
            _FSAR_CLASSES,
            {
                "trainlist03.txt": f"{_TA2N_SSV2}/ssv2_CMN/trainlist03.txt",
                "vallist03.txt": f"{_TA2N_SSV2}/ssv2_CMN/vallist03.txt",
                "testlist03.txt": f"{_TA2N_SSV2}/ssv2_CMN/testlist03.txt",
            },
            flip=False,
        ),
        _spec(
            "ssv2-full",
            "SSv2-full, the OTAM split of Something-Something v2 (anonymised class folders); the "
            "train list from the TA2N repository, val and test from the TRX repository (published "
            "there as vallist07.txt and testlist07.txt).",
            _FSAR_CLASSES,
            {
                "trainlist03.txt": f"{_TA2N_KINETICS}/ssv2_OTAM/trainlist03.txt",
                "vallist03.txt": f"{_TRX}/ssv2_OTAM/vallist07.txt",
                "testlist03.txt": f"{_TRX}/ssv2_OTAM/testlist07.txt",
            },
            flip=False,
        ),
        _spec(
            "ucf101",
            "UCF101, the ARN split; lists from the TRX repository.",
            {"train": 70, "val": 10, "test": 21},
            _per_split(f"{_TRX}/ucf_ARN"),
        ),
        _spec(
            "hmdb51",
            "HMDB51, the ARN split; lists from the TRX repository.",
            {"train": 31, "val": 10, "test": 10},
            _per_split(f"{_TRX}/hmdb_ARN"),
        ),
        _spec(
            "activitynet",
            "ActivityNet long-video split released with the paper (Liu et al., ACM MM 2022); lists "
            "from the authors' Sampler repository.",
            _FSAR_CLASSES,
            _per_split(_SAMPLER),
        ),
    )
}


def default_splits_root() -> Path:
    """Where :func:`fetch_splits` stores registry lists by default: ``~/.cache/stsampler/splits``."""
    return Path.home() / ".cache" / "stsampler" / "splits"


def read_split_list(path: str | os.PathLike) -> list[tuple[str, str]]:
    """Parse a split list into ``(class_name, video_id)`` pairs, in file order.

    Blank lines are skipped; surrounding whitespace is ignored. A line without a ``/`` or with an
    empty class or video id, and a video listed twice, raise :class:`DatasetError` naming the file
    and the line numbers.
    """
    return [(class_name, video_id) for _, class_name, video_id in _read_numbered(Path(path))]


def _read_numbered(path: Path) -> list[tuple[int, str, str]]:
    """``(line_number, class_name, video_id)`` of each entry of a split list (see :func:`read_split_list`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DatasetError(f"cannot read split list {path}: {exc.strerror or exc}") from exc
    entries = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        class_name, sep, video_id = line.partition("/")
        class_name, video_id = class_name.strip(), video_id.strip()
        if not sep or not class_name or not video_id:
            raise DatasetError(
                f"{path}, line {number}: expected 'class/video_id', got {line!r}; fix or delete the line"
            )
        entries.append((number, class_name, video_id))
    first: dict[tuple[str, str], int] = {}
    repeats = []
    for number, class_name, video_id in entries:
        earlier = first.setdefault((class_name, video_id), number)
        if earlier != number:
            repeats.append(f"line {number} repeats line {earlier} ({class_name}/{video_id})")
    if repeats:
        raise DatasetError(
            f"{path}: {len(repeats)} duplicated line(s): {'; '.join(repeats[:5])}"
            f"{'; ...' if len(repeats) > 5 else ''}; a video listed twice can be support and query "
            "of one episode: delete the repeats"
        )
    return entries


def format_split_list(entries: Iterable[tuple[str, str]]) -> str:
    """The text of a split list holding ``entries`` (one ``class/video_id`` per line)."""
    return "".join(f"{class_name}/{video_id}\n" for class_name, video_id in entries)


def write_split_list(path: str | os.PathLike, entries: Iterable[tuple[str, str]]) -> Path:
    """Write a split list atomically."""
    return atomic_write_text(path, format_split_list(entries))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _urlopen_bytes(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.read()


def fetch_splits(
    name: str,
    dest: str | os.PathLike,
    overwrite: bool = False,
    fetch_bytes: Callable[[str], bytes] | None = None,
) -> list[Path]:
    """Download a registry benchmark's split lists into ``dest`` and verify their sha256.

    A file already in ``dest`` with the right digest is kept (unless ``overwrite``); one with a
    wrong digest raises unless ``overwrite``. ``fetch_bytes(url) -> bytes`` does the download
    (default: :mod:`urllib`); tests pass a fake. Returns the paths of the lists, in
    :data:`SPLIT_FILES` order.
    """
    spec = _benchmark(name)
    dest = Path(dest)
    fetch = fetch_bytes or _urlopen_bytes
    paths = []
    for file_name, url in spec.files.items():
        target = dest / file_name
        expected = spec.sha256[file_name]
        if target.is_file() and not overwrite:
            found = file_sha256(target)
            if found != expected:
                raise DatasetError(
                    f"{target} exists but its sha256 is {found}, expected {expected} for "
                    f"{spec.name}; delete it or fetch again with overwrite"
                )
            paths.append(target)
            continue
        if not url:
            raise DatasetError(
                f"{spec.name}: no confirmed download address for {file_name}; copy the published "
                f"list by hand to {target} (expected sha256 {expected})"
            )
        try:
            data = fetch(url)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise DatasetError(
                f"cannot download {url} ({exc}); download it by hand and save it as {target}"
            ) from exc
        found = _sha256(data)
        if found != expected:
            raise DatasetError(
                f"{spec.name}/{file_name} downloaded from {url} has sha256 {found}, expected "
                f"{expected}; the published list changed or the download is corrupt"
            )
        paths.append(atomic_write(target, lambda f, data=data: f.write(data)))
    return paths


def _benchmark(name: str) -> BenchmarkSpec:
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise DatasetError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}") from None


@dataclass(frozen=True)
class VideoItem:
    """One video of a split: where it is, its label (position of its class in the split's sorted
    class list), its class name and id."""

    path: Path
    label: int
    class_name: str
    video_id: str

    @property
    def key(self) -> str:
        """``class/video_id``, the video's line in a split list."""
        return f"{self.class_name}/{self.video_id}"


class _ClassFolderIndex:
    """Resolves ``class/video_id`` under a data root with one directory listing per class."""

    def __init__(self, data_root: Path):
        self.data_root = Path(data_root)
        self._classes: dict[str, tuple[dict[str, Path], dict[str, Path]]] = {}

    def _listing(self, class_name: str) -> tuple[dict[str, Path], dict[str, Path]]:
        """(video files by stem, sub-folders by name) of one class folder, listed once."""
        if class_name not in self._classes:
            rank = {ext: i for i, ext in enumerate(VIDEO_EXTENSIONS)}
            files: dict[str, tuple[int, Path]] = {}
            folders: dict[str, Path] = {}
            try:
                with os.scandir(self.data_root / class_name) as entries:
                    for entry in entries:
                        if entry.name.startswith("."):
                            continue
                        if entry.is_dir():
                            folders[entry.name] = Path(entry.path)
                            continue
                        stem, ext = os.path.splitext(entry.name)
                        ext = ext.lower()
                        if ext in rank and (stem not in files or rank[ext] < files[stem][0]):
                            files[stem] = (rank[ext], Path(entry.path))
            except OSError:
                pass
            self._classes[class_name] = ({stem: p for stem, (_, p) in files.items()}, folders)
        return self._classes[class_name]

    def lookup(self, class_name: str, video_id: str) -> Path | None:
        files, folders = self._listing(class_name)
        if video_id in files:
            return files[video_id]
        folder = folders.get(video_id)
        if folder is not None and is_video(folder):
            return folder
        return None


@dataclass
class Split:
    """A resolved split.

    Attributes:
        name: ``"train"``, ``"val"`` or ``"test"``.
        classes: the class names, sorted; an item's label is its class's position here.
        items: the videos found on disk, in list order.
        missing: ``class/video_id`` of the listed videos with no file.
        list_file: the split list read, if any.
    """

    name: str
    classes: list[str]
    items: list[VideoItem]
    missing: list[str] = field(default_factory=list)
    list_file: Path | None = None

    @property
    def description(self) -> str:
        """``"train split (lists/trainlist03.txt)"``: what messages call it."""
        return f"{self.name} split" + (f" ({self.list_file})" if self.list_file is not None else "")

    @property
    def keys(self) -> list[str]:
        """``class/video_id`` of each item (what :func:`stsampler.data.episodes.load_episodes` checks)."""
        return [item.key for item in self.items]


def _resolve_entries(
    name: str, entries: Sequence[tuple[str, str]], index: _ClassFolderIndex, list_file: Path | None = None
) -> Split:
    classes = sorted({class_name for class_name, _ in entries})
    label = {class_name: i for i, class_name in enumerate(classes)}
    items, missing = [], []
    for class_name, video_id in entries:
        path = index.lookup(class_name, video_id)
        if path is None:
            missing.append(f"{class_name}/{video_id}")
        else:
            items.append(VideoItem(path, label[class_name], class_name, video_id))
    return Split(name, classes, items, missing, list_file)


def _split_file(split_dir: Path, split: str) -> Path:
    if split not in SPLIT_FILES:
        raise DatasetError(f"unknown split {split!r}; use one of {', '.join(SPLIT_FILES)}")
    return Path(split_dir) / SPLIT_FILES[split]


def _leaks(lists: dict[str, tuple[Path, list[tuple[int, str, str]]]]) -> list[str]:
    """Videos listed in two of ``lists`` (split -> (file, numbered entries)), described with files and lines."""
    seen: dict[tuple[str, str], tuple[Path, int]] = {}
    leaks = []
    for path, entries in lists.values():
        for number, class_name, video_id in entries:
            other = seen.setdefault((class_name, video_id), (path, number))
            if other[0] != path:
                leaks.append(f"{class_name}/{video_id} is on line {other[1]} of {other[0]} and line {number} of {path}")
    return leaks


def _leak_error(leaks: list[str]) -> DatasetError:
    return DatasetError(
        f"{len(leaks)} video(s) are listed in two splits: {'; '.join(leaks[:5])}{'; ...' if len(leaks) > 5 else ''}; "
        "a video may belong to one of train/val/test only: delete the repeats"
    )


def load_split(split_dir: str | os.PathLike, split: str, data_root: str | os.PathLike) -> Split:
    """Read ``split_dir/SPLIT_FILES[split]`` and find each listed video under ``data_root``.

    The other lists of ``split_dir`` that exist are read too: a video listed in two splits raises
    :class:`DatasetError` naming both files and lines.
    """
    path = _split_file(Path(split_dir), split)
    lists = {split: (path, _read_numbered(path))}
    for other in SPLIT_FILES:
        other_path = _split_file(Path(split_dir), other)
        if other != split and other_path.is_file():
            lists[other] = (other_path, _read_numbered(other_path))
    leaks = _leaks(lists)
    if leaks:
        raise _leak_error(leaks)
    entries = [(class_name, video_id) for _, class_name, video_id in lists[split][1]]
    return _resolve_entries(split, entries, _ClassFolderIndex(Path(data_root)), path)


def split_dir_for(name_or_dir: str | os.PathLike, splits_root: str | os.PathLike | None = None) -> Path:
    """The directory of split lists meant by a registry name (``splits_root/<name>``, default
    :func:`default_splits_root`) or by a directory path (returned as it is)."""
    if str(name_or_dir) in BENCHMARKS:
        return Path(splits_root or default_splits_root()) / str(name_or_dir)
    return Path(name_or_dir)


def load_benchmark_split(
    name_or_dir: str | os.PathLike,
    split: str,
    data_root: str | os.PathLike,
    splits_root: str | os.PathLike | None = None,
) -> Split:
    """Load a split of a registry benchmark (lists under ``splits_root/<name>/``, default
    :func:`default_splits_root`) or of a directory of split lists."""
    split_dir = split_dir_for(name_or_dir, splits_root)
    if str(name_or_dir) in BENCHMARKS:
        if not _split_file(split_dir, split).is_file():
            raise DatasetError(
                f"no {SPLIT_FILES.get(split, split)} in {split_dir}; run "
                f"`stsampler splits fetch {name_or_dir}` first (or pass a directory of lists)"
            )
    elif not split_dir.is_dir():
        raise DatasetError(
            f"{name_or_dir!r} is neither a known benchmark ({', '.join(BENCHMARKS)}) nor a directory"
        )
    return load_split(split_dir, split, data_root)


def check_split_dir(
    split_dir: str | os.PathLike,
    data_root: str | os.PathLike,
    expected: dict[str, int] | None = None,
    way: int = 2,
    shot: int = 1,
    query: int = 1,
) -> dict[str, dict]:
    """Check every split of a directory of lists against ``data_root``, opening each video.

    Each listed video is looked up, then probed (:func:`stsampler.data.video.probe_video`:
    container and stream headers, frame count and the stream's last packet; no decoding). Never
    raises on bad lists or videos: problems are reported (:func:`check_problems` judges them).

    Returns:
        ``{split: {"file", "listed", "found", "missing", "broken", "classes", "expected_classes",
        "classes_ok", "short_classes"}}``: ``missing`` the ``class/video_id`` of the videos not
        under ``data_root``, ``broken`` ``{class/video_id: reason}`` of those that cannot be read,
        ``short_classes`` ``{class: readable videos}`` of the classes with fewer than ``shot +
        query``, ``classes_ok`` whether the class count matches ``expected`` (None without) and is
        at least ``way``. A list that is absent, malformed, repeats a video or shares one with
        another list gives ``{split: {"file", "error"}}``.
    """
    index = _ClassFolderIndex(Path(data_root))
    report: dict[str, dict] = {}
    lists: dict[str, tuple[Path, list[tuple[int, str, str]]]] = {}
    for split in SPLIT_FILES:
        path = _split_file(Path(split_dir), split)
        try:
            lists[split] = (path, _read_numbered(path))
        except DatasetError as exc:
            report[split] = {"file": str(path), "error": str(exc)}
    for split, (path, entries) in lists.items():
        leaks = _leaks({split: (path, entries), **{o: lists[o] for o in lists if o != split}})
        if leaks:
            report[split] = {"file": str(path), "error": str(_leak_error(leaks))}
            continue
        result = _resolve_entries(split, [(c, v) for _, c, v in entries], index, path)
        broken: dict[str, str] = {}
        for item in result.items:
            try:
                probe_video(item.path)
            except VideoReadError as exc:
                broken[item.key] = str(exc)
        readable: dict[str, int] = dict.fromkeys(result.classes, 0)
        for item in result.items:
            readable[item.class_name] += item.key not in broken
        want = (expected or {}).get(split)
        report[split] = {
            "file": str(path),
            "listed": len(entries),
            "found": len(result.items),
            "missing": result.missing,
            "broken": broken,
            "classes": len(result.classes),
            "expected_classes": want,
            "classes_ok": len(result.classes) >= way and (want is None or len(result.classes) == want),
            "short_classes": {c: n for c, n in readable.items() if n < shot + query},
        }
    return {split: report[split] for split in SPLIT_FILES}


def check_problems(report: dict[str, dict], max_bad_fraction: float = 0.0, way: int = 2) -> list[str]:
    """The problems of a :func:`check_split_dir` report, one line each (empty: all is well).

    A split is at fault when its list has an error, its class count is off, a class has too few
    readable videos, or more than ``max_bad_fraction`` of its listed videos are missing or broken
    (each named, the first few of each kind).
    """
    problems = []
    for split, entry in report.items():
        if "error" in entry:
            problems.append(entry["error"])
            continue
        where = f"{split} split ({entry['file']})"
        bad = len(entry["missing"]) + len(entry["broken"])
        if bad and bad > max_bad_fraction * entry["listed"]:
            parts = []
            if entry["missing"]:
                parts.append(f"{len(entry['missing'])} missing ({', '.join(entry['missing'][:3])})")
            if entry["broken"]:
                named = ", ".join(list(entry["broken"])[:3])
                parts.append(f"{len(entry['broken'])} broken ({named})")
            problems.append(
                f"{where}: {' and '.join(parts)} of {entry['listed']} listed videos (more than "
                f"--max-bad-fraction {max_bad_fraction:g})"
            )
        if not entry["classes_ok"]:
            want = entry["expected_classes"]
            problems.append(
                f"{where}: {entry['classes']} classes; {way}-way episodes need at least {way}"
                + (f", the benchmark has {want}" if want is not None else "")
            )
        if entry["short_classes"]:
            named = ", ".join(f"{c!r}: {n}" for c, n in list(entry["short_classes"].items())[:5])
            problems.append(
                f"{where}: {len(entry['short_classes'])} class(es) with fewer readable videos than "
                f"shot+query ({named})"
            )
    return problems


def split_class_names(
    names: Sequence[str], seed: int = 0, fractions: Sequence[float] = (0.6, 0.2, 0.2)
) -> dict[str, list[str]]:
    """Partition class names into disjoint, sorted train/val/test lists, deterministically per seed.

    Each part gets at least one class; val and test get ``round(fraction * n)`` (at least 1) and
    train the rest. Raises :class:`DatasetError` for fewer than 3 classes or bad fractions.
    """
    fractions = np.asarray(fractions, dtype=float)
    if fractions.shape != (3,) or (fractions <= 0).any():
        raise DatasetError(f"split fractions must be three positive numbers, got {list(fractions)}")
    fractions = fractions / fractions.sum()
    names = sorted(set(names))
    n = len(names)
    if n < 3:
        raise DatasetError(
            f"{n} class(es) cannot be split into disjoint train/val/test class sets: need at least 3"
        )
    n_val = max(1, int(round(fractions[1] * n)))
    n_test = max(1, int(round(fractions[2] * n)))
    while n - n_val - n_test < 1:
        if n_val >= n_test:
            n_val -= 1
        else:
            n_test -= 1
    order = np.random.default_rng(seed).permutation(n)
    picked = [names[i] for i in order]
    parts = {"val": picked[:n_val], "test": picked[n_val : n_val + n_test], "train": picked[n_val + n_test :]}
    return {split: sorted(parts[split]) for split in SPLIT_FILES}

