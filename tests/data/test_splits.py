"""Split lists, the benchmark registry, checksummed fetch, resolution, checks and partitions."""
from __future__ import annotations

import hashlib
import urllib.error
from pathlib import Path

import pytest

from stsampler.data.splits import (
    BENCHMARKS,
    SPLIT_FILES,
    check_split_dir,
    fetch_splits,
    load_benchmark_split,
    load_split,
    partition_class_folders,
    read_split_list,
    resolve_video,
    split_class_names,
    split_dir_for,
    write_split_list,
)
from stsampler.errors import DatasetError

SHARED_SPLITS = Path(__file__).resolve().parents[2] / ".." / "shared" / "splits"
FOLDERS = {
    "kinetics100": "kinetics_CMN",
    "ssv2-small": "ssv2_CMN",
    "ssv2-full": "ssv2_OTAM",
    "ucf101": "ucf_ARN",
    "hmdb51": "hmdb_ARN",
    "activitynet": "activitynet_sampler",
}
needs_shared = pytest.mark.skipif(not SHARED_SPLITS.is_dir(), reason="../shared/splits is absent")


def test_registry_covers_every_benchmark():
    assert set(BENCHMARKS) == set(FOLDERS)
    for spec in BENCHMARKS.values():
        assert set(spec.files) == set(spec.sha256) == set(SPLIT_FILES.values())
        assert set(spec.classes) == set(SPLIT_FILES)
        for url in spec.files.values():
            assert url == "" or url.startswith("https://raw.githubusercontent.com/")
    assert not BENCHMARKS["ssv2-small"].flip and not BENCHMARKS["ssv2-full"].flip
    assert BENCHMARKS["kinetics100"].flip


@needs_shared
@pytest.mark.parametrize("name", sorted(FOLDERS))
def test_shared_lists_parse_with_expected_classes(name):
    spec = BENCHMARKS[name]
    seen: dict[str, str] = {}
    for split, file_name in SPLIT_FILES.items():
        path = SHARED_SPLITS / FOLDERS[name] / file_name
        entries = read_split_list(path)
        classes = {c for c, _ in entries}
        assert len(classes) == spec.classes[split]
        for c in classes:
            assert c not in seen, f"{c} in both {seen.get(c)} and {split}"
            seen[c] = split
        assert hashlib.sha256(path.read_bytes()).hexdigest() == spec.sha256[file_name]


@needs_shared
def test_kinetics_class_names_keep_spaces():
    entries = read_split_list(SHARED_SPLITS / "kinetics_CMN" / "trainlist03.txt")
    assert entries[0] == ("air drumming", "-VtLx-mcPds_000012_000022")


def _fake_opener(name: str, corrupt: str | None = None):
    spec = BENCHMARKS[name]
    by_url = {url: SHARED_SPLITS / FOLDERS[name] / f for f, url in spec.files.items()}
    calls = []

    def fetch(url: str) -> bytes:
        calls.append(url)
        data = by_url[url].read_bytes()
        return data + b"x/y\n" if by_url[url].name == corrupt else data

    return fetch, calls


@needs_shared
def test_fetch_with_fake_opener_writes_verified_lists(tmp_path):
    fetch, calls = _fake_opener("hmdb51")
    paths = fetch_splits("hmdb51", tmp_path / "hmdb51", fetch_bytes=fetch)
    assert [p.name for p in paths] == list(SPLIT_FILES.values())
    for p in paths:
        assert p.read_bytes() == (SHARED_SPLITS / "hmdb_ARN" / p.name).read_bytes()
    assert len(calls) == 3
    fetch_splits("hmdb51", tmp_path / "hmdb51", fetch_bytes=fetch)
    assert len(calls) == 3, "verified files already present are not downloaded again"
    split = load_benchmark_split("hmdb51", "test", tmp_path / "videos", splits_root=tmp_path)
    assert len(split.classes) == 10 and not split.items and len(split.missing) > 0


@needs_shared
def test_fetch_detects_corrupt_download(tmp_path):
    fetch, _ = _fake_opener("ucf101", corrupt="vallist03.txt")
    with pytest.raises(DatasetError, match="vallist03.txt.*sha256") as err:
        fetch_splits("ucf101", tmp_path, fetch_bytes=fetch)
    assert BENCHMARKS["ucf101"].sha256["vallist03.txt"] in str(err.value)
    assert not (tmp_path / "vallist03.txt").exists()


def test_fetch_network_failure_names_url(tmp_path):
    def offline(url: str) -> bytes:
        raise urllib.error.URLError("no route to host")

    with pytest.raises(DatasetError, match="by hand") as err:
        fetch_splits("activitynet", tmp_path, fetch_bytes=offline)
    assert BENCHMARKS["activitynet"].files["trainlist03.txt"] in str(err.value)


def test_fetch_rejects_existing_file_with_wrong_digest(tmp_path):
    (tmp_path / "trainlist03.txt").write_text("a/b\n")
    with pytest.raises(DatasetError, match="exists but its sha256"):
        fetch_splits("hmdb51", tmp_path, fetch_bytes=lambda url: b"")


def test_unknown_benchmark():
    with pytest.raises(DatasetError, match="unknown benchmark"):
        fetch_splits("imagenet", Path("."))


def test_malformed_line_names_file_and_line(tmp_path):
    path = tmp_path / "trainlist03.txt"
    path.write_text("a/1\n\nno_slash_here\n")
    with pytest.raises(DatasetError, match=r"trainlist03.txt, line 3"):
        read_split_list(path)
    path.write_text("a/1\n/2\n")
    with pytest.raises(DatasetError, match="line 2"):
        read_split_list(path)


def test_split_at_first_slash_and_blank_lines(tmp_path):
    path = tmp_path / "list.txt"
    write_split_list(path, [("air drumming", "x_1"), ("b", "y")])
    path.write_text(path.read_text() + "\n  \nc/d/e\n")
    assert read_split_list(path) == [("air drumming", "x_1"), ("b", "y"), ("c", "d/e")]


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_resolve_video_extensions_and_frame_folders(tmp_path):
    mp4 = _touch(tmp_path / "jump" / "v1.mp4")
    avi = _touch(tmp_path / "jump" / "v2.AVI")
    _touch(tmp_path / "jump" / "v3.txt")
    frames = tmp_path / "jump" / "v4"
    _touch(frames / "00001.jpg")
    (tmp_path / "jump" / "v5").mkdir()
    assert resolve_video(tmp_path, "jump", "v1") == mp4
    assert resolve_video(tmp_path, "jump", "v2") == avi
    assert resolve_video(tmp_path, "jump", "v3") is None
    assert resolve_video(tmp_path, "jump", "v4") == frames
    assert resolve_video(tmp_path, "jump", "v5") is None, "an empty folder is no video"
    assert resolve_video(tmp_path, "run", "v1") is None


def _write_lists(split_dir: Path, lists: dict[str, list[tuple[str, str]]]) -> None:
    for split, entries in lists.items():
        write_split_list(split_dir / SPLIT_FILES[split], entries)


def test_load_split_labels_and_missing(tmp_path):
    root = tmp_path / "videos"
    for c, v in [("b c", "1"), ("b c", "2"), ("a", "3")]:
        _touch(root / c / f"{v}.mp4")
    _write_lists(tmp_path / "lists", {"train": [("b c", "1"), ("b c", "2"), ("a", "3"), ("a", "gone")]})
    split = load_split(tmp_path / "lists", "train", root)
    assert split.classes == ["a", "b c"]
    assert [(i.label, i.video_id) for i in split.items] == [(1, "1"), (1, "2"), (0, "3")]
    assert split.missing == ["a/gone"]
    assert split.keys == ["b c/1", "b c/2", "a/3"]


def test_check_split_dir_reports_missing_and_absent_lists(tmp_path):
    root = tmp_path / "videos"
    _touch(root / "a" / "1.mp4")
    _write_lists(tmp_path, {"train": [("a", "1"), ("a", "2"), ("b", "9")], "val": [("c", "1")]})
    report = check_split_dir(tmp_path, root, expected={"train": 2, "val": 2})
    train = report["train"]
    assert (train["listed"], train["found"], train["missing"]) == (3, 1, 2)
    assert train["missing_examples"] == ["a/2", "b/9"]
    assert train["classes_ok"] is True and train["empty_classes"] == ["b"]
    assert report["val"]["classes_ok"] is False and report["val"]["found"] == 0
    assert "error" in report["test"]


def test_split_dir_for(tmp_path):
    assert split_dir_for("hmdb51", tmp_path) == tmp_path / "hmdb51"
    assert split_dir_for(tmp_path / "mine") == tmp_path / "mine"
    assert split_dir_for("ucf101").parts[-4:] == (".cache", "stsampler", "splits", "ucf101")


def test_load_benchmark_split_errors(tmp_path):
    with pytest.raises(DatasetError, match="splits fetch kinetics100"):
        load_benchmark_split("kinetics100", "train", tmp_path, splits_root=tmp_path)
    with pytest.raises(DatasetError, match="neither a known benchmark"):
        load_benchmark_split(tmp_path / "nowhere", "train", tmp_path)
    with pytest.raises(DatasetError, match="unknown split"):
        load_split(tmp_path, "holdout", tmp_path)


def test_partition_class_folders_disjoint_and_deterministic(tmp_path):
    for c in range(10):
        for v in range(2):
            _touch(tmp_path / f"class{c}" / f"v{v}.mp4")
    _touch(tmp_path / "class9" / "frames" / "0001.png")
    (tmp_path / "empty_class").mkdir()
    parts = partition_class_folders(tmp_path, seed=3)
    assert [len(parts[s].classes) for s in ("train", "val", "test")] == [6, 2, 2]
    all_classes = [c for s in parts.values() for c in s.classes]
    assert sorted(all_classes) == sorted(f"class{c}" for c in range(10))
    assert parts == partition_class_folders(tmp_path, seed=3)
    others = [partition_class_folders(tmp_path, seed=s)["test"].classes for s in range(6)]
    assert len({tuple(o) for o in others}) > 1
    counts = {i.class_name: 0 for s in parts.values() for i in s.items}
    for s in parts.values():
        for i in s.items:
            counts[i.class_name] += 1
            assert s.classes[i.label] == i.class_name
    assert counts["class9"] == 3 and counts["class0"] == 2


def test_partition_needs_three_classes(tmp_path):
    _touch(tmp_path / "a" / "1.mp4")
    _touch(tmp_path / "b" / "1.mp4")
    with pytest.raises(DatasetError, match="at least 3"):
        partition_class_folders(tmp_path)
    assert {k: len(v) for k, v in split_class_names(["a", "b", "c"]).items()} == {"train": 1, "val": 1, "test": 1}
