"""VideoDataset on tiny videos: shapes, seeded draws, bad videos skipped and counted, abort threshold."""
from __future__ import annotations

import functools
import warnings

import pytest
import torch
from torch.utils.data import DataLoader

from stsampler.data.dataset import MIN_VIDEOS_BEFORE_ABORT, VideoDataset
from stsampler.data.episodes import EpisodeSampler, collate_episode
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


def test_bad_video_skipped_with_one_warning(tiny_split):
    items = list(tiny_split.items)
    items[4].path.with_name("broken.mp4").write_bytes(b"not a video at all")
    items[4] = type(items[4])(items[4].path.with_name("broken.mp4"), items[4].label, items[4].class_name, "broken")
    ds = _dataset(items, train=False, max_bad_fraction=0.5)
    with pytest.warns(RuntimeWarning, match="broken.mp4") as record:
        item = ds[4]
    assert len([w for w in record if "broken.mp4" in str(w.message)]) == 1
    assert item["label"] == items[4].label and item["index"] == 7, "next video of the same class"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ds[4]["index"] == 7
    assert list(ds.bad_videos) == [str(items[4].path)]


def test_too_many_bad_videos_abort(tiny_split, tmp_path):
    items = list(tiny_split.items)
    for i in (0, 1):
        bad = tmp_path / f"bad{i}.mp4"
        bad.write_bytes(b"\x00" * 64)
        items[i] = type(items[i])(bad, items[i].label, items[i].class_name, f"bad{i}")
    ds = _dataset(items, train=False, max_bad_fraction=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(DatasetError, match="splits check") as err:
            for i in range(len(ds)):
                ds[i]
    assert "2 of the" in str(err.value) and len(ds._tried) >= MIN_VIDEOS_BEFORE_ABORT
    tolerant = _dataset(items, train=False, max_bad_fraction=0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        labels = [tolerant[i]["label"] for i in range(len(tolerant))]
    assert labels == tolerant.labels and len(tolerant.bad_videos) == 2


def test_class_with_only_bad_videos(tmp_path):
    bad = tmp_path / "x.mp4"
    bad.write_bytes(b"junk")
    ds = _dataset([VideoItem(bad, 0, "a", "x")], train=False, max_bad_fraction=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(DatasetError, match="every video of class 'a'"):
            ds[0]


def test_episode_batches_through_a_dataloader(tiny_split):
    ds = _dataset(tiny_split.items, seed=2)
    sampler = EpisodeSampler(ds.labels, way=3, shot=1, query=2, num_episodes=2, seed=4)
    loader = DataLoader(ds, batch_sampler=sampler, collate_fn=functools.partial(collate_episode, shot=1))
    batches = list(loader)
    assert len(batches) == 2
    batch, episode = batches[0], sampler.episode(0)
    assert batch["frames"].shape == (9, M, 3, 24, 24)
    assert batch["indices"].tolist() == list(episode.indices)
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


def test_training_never_caches(tiny_split):
    ds = _dataset(tiny_split.items, train=True, cache_bytes=10**9)
    reads = _counting_reads(ds)
    ds[(0, 1)], ds[(0, 2)]
    assert reads == [0, 0] and ds.cache_bytes == 0
