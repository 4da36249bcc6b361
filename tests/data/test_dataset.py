"""VideoDataset on tiny videos: shapes, seeded draws, bad videos replaced (never by an episode member)
and counted, the split-wide limit."""
from __future__ import annotations

import functools
import warnings

import pytest
import torch
from torch.utils.data import DataLoader

from stsampler.data.dataset import VideoDataset
from stsampler.data.episodes import Episode, EpisodeSampler, collate_episode
from stsampler.data.splits import VideoItem, load_split, write_split_list
from stsampler.data.transforms import ClipTransform
from stsampler.errors import DatasetError

M = 4
NUM_VIDEOS = 12  # 3 classes x 4 videos


@pytest.fixture(scope="module")
def tiny_split(tmp_path_factory, make_frames, write_video):
    root = tmp_path_factory.mktemp("tiny")
    entries = []
    for i in range(NUM_VIDEOS):
        class_name, video_id = f"class{i % 3}", f"v{i}"
        write_video(root / "videos" / class_name / f"{video_id}.mp4", make_frames(24, 32, 40, seed=i), gop=8)
        entries.append((class_name, video_id))
    write_split_list(root / "lists" / "trainlist03.txt", entries)
    return load_split(root / "lists", "train", root / "videos")


def _dataset(items, train=True, **kwargs):
    return VideoDataset(items, M, ClipTransform(crop_size=24, resize_short=28, train=train), train=train, **kwargs)


def test_item_shapes_and_labels(tiny_split):
    ds = _dataset(tiny_split.items, decode_size=30)
    assert len(ds) == NUM_VIDEOS and ds.num_classes == 3
    assert ds.labels == [item.label for item in tiny_split.items]
    assert ds.indices_by_class() == {c: [i for i in range(NUM_VIDEOS) if ds.labels[i] == c] for c in range(3)}
    item = ds[5]
    assert item["frames"].shape == (M, 3, 24, 24) and item["frames"].dtype == torch.uint8
    assert item["frame_indices"].shape == (M,) and item["frame_indices"].dtype == torch.int64
    assert item["label"] == tiny_split.items[5].label and item["index"] == 5
    assert (item["frame_indices"].diff() > 0).all() and item["frame_indices"].max() < 24


def test_draws_are_seeded_by_index_and_draw_seed(tiny_split):
    ds = _dataset(tiny_split.items, seed=1)
    again = _dataset(tiny_split.items, seed=1)
    for key in (3, (3, 7)):
        a, b = ds[key], again[key]
        assert torch.equal(a["frames"], b["frames"]) and torch.equal(a["frame_indices"], b["frame_indices"])
    draws = [ds[(3, s)]["frame_indices"] for s in range(8)]
    assert any(not torch.equal(draws[0], d) for d in draws[1:]), "episodes must jitter differently"
    ev = _dataset(tiny_split.items, train=False)
    assert torch.equal(ev[(3, 1)]["frames"], ev[(3, 2)]["frames"]), "evaluation draws nothing at random"


def _broken(items, index, tmp_path, data: bytes = b"not a video at all"):
    """``items`` with video ``index`` replaced by a file holding ``data`` (garbage or empty)."""
    item = items[index]
    path = tmp_path / f"broken{index}.mp4"
    path.write_bytes(data)
    items = list(items)
    items[index] = VideoItem(path, item.label, item.class_name, f"broken{index}")
    return items


def test_bad_video_skipped_with_one_warning(tiny_split, tmp_path):
    items = _broken(tiny_split.items, 4, tmp_path)
    ds = _dataset(items, train=False, max_bad_fraction=0.5, split="train split (lists/trainlist03.txt)")
    with pytest.warns(RuntimeWarning, match="broken4.mp4") as record:
        item = ds[4]
    messages = [str(w.message) for w in record if "broken4.mp4" in str(w.message)]
    assert len(messages) == 1 and "class 'class1' of the train split (lists/trainlist03.txt)" in messages[0]
    assert item["label"] == items[4].label and item["index"] == 7 and item["requested"] == 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ds[4]["index"] == 7
    assert list(ds.bad_videos) == [str(items[4].path)]


def test_stand_in_is_never_a_member_of_the_episode(tiny_split, tmp_path):
    """Class 1 is [1, 4, 7, 10]: 4 broken, with 7 in the episode, is replaced by 10, not by 7."""
    items = _broken(tiny_split.items, 4, tmp_path)
    ds = _dataset(items, train=False, max_bad_fraction=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert ds[(4, 3)]["index"] == 7
        item = ds[(4, 3, (0, 4, 7))]
    assert (item["index"], item["requested"]) == (10, 4)


def test_two_broken_members_get_distinct_stand_ins(tiny_split, tmp_path):
    items = _broken(_broken(tiny_split.items, 1, tmp_path), 4, tmp_path)
    ds = _dataset(items, train=False, max_bad_fraction=0.5)
    episode = Episode(classes=(1, 0), support=(1, 0), query=(4, 3), draw_seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        batch = collate_episode([ds[key] for key in episode.batch()], shot=1)
        again = collate_episode([ds[key] for key in reversed(episode.batch())][::-1], shot=1)
    assert batch["requested"].tolist() == [1, 0, 4, 3]
    assert batch["indices"].tolist() == [7, 0, 10, 3], "each broken member takes its own share of the class"
    assert len(set(batch["indices"].tolist())) == 4
    assert torch.equal(again["indices"], batch["indices"]), "the choice does not depend on the reading order"


def test_no_admissible_stand_in_names_split_class_and_video(tiny_split, tmp_path):
    items = _broken(tiny_split.items, 4, tmp_path)
    ds = _dataset(items, train=False, max_bad_fraction=0.5, split="test split (t.txt)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(DatasetError) as err:
            ds[(4, 0, (1, 4, 7, 10))]
    assert "class1/broken4 (class 'class1' of the test split (t.txt))" in str(err.value)
    assert "splits check" in str(err.value)


def test_the_cache_never_serves_a_member_as_a_stand_in(tiny_split, tmp_path):
    items = _broken(tiny_split.items, 4, tmp_path)
    ds = _dataset(items, train=False, max_bad_fraction=0.5, cache_bytes=10**7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert ds[4]["index"] == 7  # 7 is now cached, and 4 is known to be broken
        assert ds[(4, 0, (4, 7))]["index"] == 10
        assert ds[(7, 0, (4, 7))]["index"] == 7


def test_bad_fraction_is_judged_over_the_whole_split(tiny_split, tmp_path):
    """One unreadable video in 12 (8 %) is under a 9 % limit however early it is met."""
    items = _broken(tiny_split.items, 0, tmp_path)
    ds = _dataset(items, train=False, max_bad_fraction=0.09)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        labels = [ds[i]["label"] for i in range(len(ds))]
    assert labels == ds.labels and len(ds.bad_videos) == 1
    with_missing = _dataset(items, train=False, max_bad_fraction=0.09, split="train split", missing=["class0/gone"])
    with pytest.raises(DatasetError, match="2 of the 13 videos of the train split") as err:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            with_missing[0]
    assert "class0/gone" in str(err.value) and "broken0.mp4" in str(err.value)


def test_empty_files_are_found_when_the_dataset_is_built(tiny_split, tmp_path):
    items = _broken(_broken(tiny_split.items, 0, tmp_path, b""), 1, tmp_path, b"")
    with pytest.warns(RuntimeWarning, match="2 video"):
        tolerant = _dataset(items, train=False, max_bad_fraction=0.2)
    assert sorted(tolerant.bad_videos) == sorted(str(items[i].path) for i in (0, 1))
    with pytest.raises(DatasetError) as err:  # before any decoding
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            _dataset(items, train=False, max_bad_fraction=0.1, split="val split (v.txt)")
    message = str(err.value)
    assert "2 of the 12 videos of the val split (v.txt)" in message and "broken0.mp4" in message
    assert "stsampler splits check" in message


def test_class_with_only_bad_videos(tmp_path):
    bad = tmp_path / "x.mp4"
    bad.write_bytes(b"junk")
    ds = _dataset([VideoItem(bad, 0, "a", "x")], train=False, max_bad_fraction=1.0, split="test split")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(DatasetError, match="a/x \\(class 'a' of the test split\\)"):
            ds[0]


def test_episode_batches_through_a_dataloader(tiny_split):
    ds = _dataset(tiny_split.items, seed=2)
    sampler = EpisodeSampler(ds.labels, way=3, shot=1, query=2, num_episodes=2, seed=4)
    loader = DataLoader(ds, batch_sampler=sampler, collate_fn=functools.partial(collate_episode, shot=1))
    batches = list(loader)
    assert len(batches) == 2
    batch, episode = batches[0], sampler.episode(0)
    assert batch["frames"].shape == (9, M, 3, 24, 24)
    assert batch["indices"].tolist() == list(episode.indices) == batch["requested"].tolist()
    assert batch["labels"].tolist() == [0, 1, 2, 0, 0, 1, 1, 2, 2]
    assert batch["class_ids"].tolist() == [ds.labels[i] for i in episode.indices]
    again = list(DataLoader(ds, batch_sampler=sampler, collate_fn=functools.partial(collate_episode, shot=1)))
    assert torch.equal(again[1]["frames"], batches[1]["frames"])


def _counting_reads(ds: VideoDataset) -> list[int]:
    """Record the index of every decode ``ds`` makes."""
    reads: list[int] = []
    load = ds._load

    def counted(index, generator):
        reads.append(index)
        return load(index, generator)

    ds._load = counted
    return reads


def test_evaluation_cache_serves_repeats_without_decoding(tiny_split):
    item_bytes = M * 3 * 24 * 24
    ds = _dataset(tiny_split.items, train=False, cache_bytes=2 * item_bytes)
    plain = _dataset(tiny_split.items, train=False)
    reads = _counting_reads(ds)
    first = ds[0]
    first["frames"].zero_()  # a caller's change never reaches the cache
    again = ds[(0, 7)]
    assert reads == [0]
    for key in ("frames", "frame_indices"):
        assert torch.equal(again[key], plain[0][key])
    ds[1], ds[0], ds[2]  # 0 was used more recently than 1: 1 is dropped to make room for 2
    ds[0], ds[1]
    assert reads == [0, 1, 2, 1]


def test_training_cache_decodes_each_video_once_and_serves_identical_clips(tiny_split, monkeypatch):
    import stsampler.data.clip_cache as clip_cache

    cached = _dataset(tiny_split.items, train=True, cache_bytes=10**9)
    plain = _dataset(tiny_split.items, train=True)
    decodes = []
    real_read = clip_cache.read_frames
    monkeypatch.setattr(
        clip_cache, "read_frames", lambda path, *a, **k: decodes.append(path) or real_read(path, *a, **k)
    )
    for draw in (1, 2, 3):  # random segment frames, crops and flips differ per draw
        a, b = cached[(0, draw)], plain[(0, draw)]
        assert torch.equal(a["frames"], b["frames"]) and torch.equal(a["frame_indices"], b["frame_indices"])
    assert decodes.count(tiny_split.items[0].path) == 1 + 3  # the cache's one full decode, plain's three
