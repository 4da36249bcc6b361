"""Split lists, the benchmark registry, checksummed fetch, resolution, checks and partitions."""
from __future__ import annotations

import hashlib
import urllib.error
from pathlib import Path

import pytest

from stsampler.data.splits import (
    BENCHMARKS,
    SPLIT_FILES,
    check_problems,
    check_split_dir,
    fetch_splits,
    load_benchmark_split,
    load_split,
    read_split_list,
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


def test_check_split_dir_reports_missing_broken_and_absent_lists(tmp_path, make_frames, write_video):
    root = tmp_path / "videos"
    for v in ("1", "3"):
        write_video(root / "a" / f"{v}.mp4", make_frames(4, 16, 16))
    (root / "a" / "4.mp4").write_bytes(b"text, not a video")
    _write_lists(tmp_path, {"train": [("a", "1"), ("a", "2"), ("a", "3"), ("a", "4"), ("b", "9")], "val": [("c", "1")]})
    report = check_split_dir(tmp_path, root, expected={"train": 2, "val": 2})
    train = report["train"]
    assert (train["listed"], train["found"]) == (5, 3)
    assert train["missing"] == ["a/2", "b/9"] and list(train["broken"]) == ["a/4"]
    assert "4.mp4" in train["broken"]["a/4"]
    assert train["classes_ok"] is True and train["short_classes"] == {"b": 0}
    assert report["val"]["classes_ok"] is False and report["val"]["found"] == 0
    assert "error" in report["test"]
    problems = check_problems(report)
    assert any("2 missing (a/2, b/9) and 1 broken (a/4) of 5" in p for p in problems)
    assert any("'b': 0" in p for p in problems) and any("testlist03.txt" in p for p in problems)
    tolerant = check_problems(report, max_bad_fraction=0.6)
    assert not any(p.startswith("train split") and "missing" in p for p in tolerant)
    assert any(p.startswith("val split") and "1 missing (c/1)" in p for p in tolerant)


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


def test_split_class_names_gives_each_part_a_class():
    assert {k: len(v) for k, v in split_class_names(["a", "b", "c"]).items()} == {"train": 1, "val": 1, "test": 1}
    with pytest.raises(DatasetError, match="at least 3"):
        split_class_names(["a", "b"])


def test_duplicated_line_names_the_file_and_both_lines(tmp_path):
    path = tmp_path / "trainlist03.txt"
    path.write_text("a/1\nb/2\n\na/1\n")
    with pytest.raises(DatasetError, match=r"trainlist03.txt: 1 duplicated line\(s\): line 4 repeats line 1 \(a/1\)"):
        read_split_list(path)


def test_crlf_lists_read_like_lf(tmp_path):
    path = tmp_path / "trainlist03.txt"
    path.write_bytes(b"a/1\r\nb c/2\r\n")
    assert read_split_list(path) == [("a", "1"), ("b c", "2")]


def test_video_in_two_splits_names_both_files_and_lines(tmp_path):
    root = tmp_path / "videos"
    for c, v in [("a", "1"), ("a", "2"), ("b", "3")]:
        _touch(root / c / f"{v}.mp4")
    _write_lists(tmp_path / "lists", {"train": [("a", "1"), ("a", "2")], "test": [("b", "3"), ("a", "2")]})
    for split in ("train", "test"):
        with pytest.raises(DatasetError, match="listed in two splits") as err:
            load_split(tmp_path / "lists", split, root)
        message = str(err.value)
        assert "a/2 is on line 2 of" in message and "trainlist03.txt" in message and "testlist03.txt" in message
    report = check_split_dir(tmp_path / "lists", root)
    assert "listed in two splits" in report["train"]["error"] and "listed in two splits" in report["test"]["error"]
