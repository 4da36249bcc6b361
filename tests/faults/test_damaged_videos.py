"""Fault matrix, damaged videos: each is reported by `stsampler splits check` (exit 2, named) and,
when a dataset reads it, replaced by a stand-in that is recorded, never decoded as if it were
whole; a 1-frame video is legal and read as itself."""
from __future__ import annotations

import json
import warnings

import pytest

from stsampler.config import config_from_dict
from stsampler.data.dataset import VideoDataset
from stsampler.data.episodes import collate_episode
from stsampler.data.splits import load_split
from stsampler.data.transforms import ClipTransform
from stsampler.data.video import probe_video
from stsampler.engine.builder import build_dataset
from stsampler.errors import DatasetError

DAMAGES = ("zero-byte", "truncated", "faststart-truncated", "text-renamed", "one-frame")
LEGAL = {"one-frame"}


@pytest.mark.parametrize("kind", DAMAGES)
def test_damaged_video(kind, dataset, damage, run_cli):
    split = load_split(dataset / "splits", "test", dataset / "videos")
    victim = split.items[0]
    damage(victim.path, kind)

    code, out, err = run_cli("splits", "check", dataset / "splits", dataset / "videos")
    report = json.loads(out)
    if kind in LEGAL:
        assert code == 0 and err == ""
        assert report["test"]["broken"] == {} and probe_video(victim.path).num_frames == 1
    else:
        assert code == 2
        assert err.startswith("stsampler splits: error:") and err.count("\n") == 1
        assert f"1 broken ({victim.key})" in err and "testlist03.txt" in err
        assert str(victim.path) in report["test"]["broken"][victim.key]

    same = [i for i, item in enumerate(split.items) if item.label == victim.label]
    other = [i for i, item in enumerate(split.items) if item.label != victim.label]
    members = [same[0], other[0], same[1], other[1]]  # 2-way 1-shot 1-query, the damaged video first
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = VideoDataset(split.items, 4, ClipTransform(crop_size=24, resize_short=28), max_bad_fraction=0.5)
        batch = collate_episode([ds[(i, 0, tuple(members))] for i in members], shot=1)
    assert batch["requested"].tolist() == members
    if kind in LEGAL:
        assert batch["indices"].tolist() == members and not ds.bad_videos and not caught
        assert (batch["frame_indices"][0] == 0).all(), "a 1-frame video repeats its frame"
    else:
        stand_in = batch["indices"][0].item()
        assert stand_in != members[0] and stand_in not in members and ds.labels[stand_in] == victim.label
        assert list(ds.bad_videos) == [str(victim.path)]
        assert any(str(victim.path) in str(w.message) for w in caught)



def test_build_dataset_judges_the_whole_split_and_names_its_file(dataset):
    """The training path: the limit is judged over every listed video, and the error names the
    split, its list file, the video and the command that lists the culprits."""
    lines = (dataset / "splits" / "testlist03.txt").read_text().splitlines()
    (dataset / "videos" / f"{lines[0]}.mp4").write_bytes(b"")

    def config(limit: float):
        data = {"split_dir": str(dataset / "splits"), "data_root": str(dataset / "videos"), "max_bad_fraction": limit}
        return config_from_dict({"data": data})

    with pytest.warns(RuntimeWarning, match="1 video"):
        tolerant = build_dataset(config(0.2), "test", train=False)
    assert tolerant.split.startswith("test split (") and len(tolerant.bad_videos) == 1
    with pytest.raises(DatasetError) as err, warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        build_dataset(config(0.1), "test", train=False)
    message = str(err.value)
    assert "1 of the 6 videos of the test split" in message and "testlist03.txt" in message
    assert lines[0] in message and "stsampler splits check" in message
