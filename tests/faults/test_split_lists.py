"""Fault matrix, bad split lists: `stsampler splits check` exits 2 naming the file and line (or
the class) at fault, and loading the split for training refuses the same list instead of scoring
it; a CRLF list is legal."""
from __future__ import annotations

import json

import pytest

from stsampler.data.dataset import VideoDataset
from stsampler.data.episodes import EpisodeSampler
from stsampler.data.splits import SPLIT_FILES, load_split
from stsampler.data.transforms import ClipTransform
from stsampler.errors import DatasetError


def _lines(dataset, split: str) -> list[str]:
    return (dataset / "splits" / SPLIT_FILES[split]).read_text().splitlines()


def _write(dataset, split: str, lines: list[str], end: str = "\n") -> None:
    (dataset / "splits" / SPLIT_FILES[split]).write_bytes("".join(line + end for line in lines).encode())


def missing_file(dataset):
    lines = _lines(dataset, "test")
    gone = lines[0].split("/")[0] + "/v9999"
    _write(dataset, "test", [*lines, gone])
    return [gone, "1 missing", "testlist03.txt"], None


def duplicate_line(dataset):
    lines = _lines(dataset, "test")
    _write(dataset, "test", [*lines, lines[0]])
    return [f"line {len(lines) + 1} repeats line 1 ({lines[0]})", "testlist03.txt"], "duplicated line"


def cross_split_leak(dataset):
    train, test = _lines(dataset, "train"), _lines(dataset, "test")
    _write(dataset, "test", [*test, train[2]])
    return [f"{train[2]} is on line 3 of", "trainlist03.txt", f"line {len(test) + 1} of"], "listed in two splits"


def crlf(dataset):
    for split in SPLIT_FILES:
        _write(dataset, split, _lines(dataset, split), end="\r\n")
    return None, None


def too_few_classes(dataset):
    return ["2 classes; 3-way episodes need at least 3", "testlist03.txt"], "3 classes, the test split"


def class_with_one_video(dataset):
    lines = _lines(dataset, "test")
    lonely = lines[-1].split("/")[0]
    _write(dataset, "test", [line for line in lines if not line.startswith(lonely + "/")] + [lines[-1]])
    return [f"'{lonely}': 1", "testlist03.txt"], f"'{lonely}': 1"


CASES = [missing_file, duplicate_line, cross_split_leak, crlf, too_few_classes, class_with_one_video]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__ for c in CASES])
def test_bad_split_list(case, dataset, run_cli):
    clean = json.loads(run_cli("splits", "check", dataset / "splits", dataset / "videos")[1])
    keys = load_split(dataset / "splits", "test", dataset / "videos").keys
    cli_words, load_words = case(dataset)
    way = 3 if case is too_few_classes else 2
    code, out, err = run_cli("splits", "check", dataset / "splits", dataset / "videos", "--way", way)
    if cli_words is None:  # legal
        assert code == 0 and err == "" and json.loads(out) == clean
        assert load_split(dataset / "splits", "test", dataset / "videos").keys == keys
        return
    assert code == 2 and err.startswith("stsampler splits: error:") and err.count("\n") == 1
    for words in cli_words:
        assert words in err
    if load_words is None:  # the missing video is reported, left out and counted against the limit
        split = load_split(dataset / "splits", "test", dataset / "videos")
        assert split.missing == [cli_words[0]]
        with pytest.raises(DatasetError, match="1 of the 7 videos of the test split"):
            VideoDataset(split.items, 4, ClipTransform(crop_size=24), split="test split", missing=split.missing)
        return
    with pytest.raises(DatasetError, match=load_words.replace("(", r"\(").replace(")", r"\)")):
        split = load_split(dataset / "splits", "test", dataset / "videos")
        names = {item.label: item.class_name for item in split.items}
        EpisodeSampler([item.label for item in split.items], way, 1, 1, 1, class_names=names, split="test split")
