"""Episode sampling, fixed episode lists and collation."""
from __future__ import annotations

import functools

import pytest
import torch

from stsampler.data.episodes import (
    Episode,
    EpisodeSampler,
    FixedEpisodeSampler,
    collate_episode,
    load_episodes,
    sample_episodes,
    save_episodes,
)
from stsampler.errors import DatasetError

LABELS = [c for c in range(8) for _ in range(6)]  # 8 classes x 6 videos, index = 6*class + j


def test_episode_sizes_and_class_major_order():
    sampler = EpisodeSampler(LABELS, way=5, shot=2, query=3, num_episodes=20, seed=1)
    for i in range(20):
        ep = sampler.episode(i)
        assert len(ep.classes) == len(set(ep.classes)) == 5
        assert len(ep.support) == 10 and len(ep.query) == 15
        assert [LABELS[j] for j in ep.support] == [c for c in ep.classes for _ in range(2)]
        assert [LABELS[j] for j in ep.query] == [c for c in ep.classes for _ in range(3)]
        assert len(set(ep.indices)) == 25, "support and query never share a video"
    batches = list(sampler)
    assert len(batches) == len(sampler) == 20
    ep0 = sampler.episode(0)
    assert batches[0] == [(j, ep0.draw_seed, ep0.support + ep0.query) for j in ep0.support + ep0.query]


def test_same_seed_same_episodes_other_seed_and_rank_differ():
    a = EpisodeSampler(LABELS, 5, 1, 2, 10, seed=7)
    b = EpisodeSampler(LABELS, 5, 1, 2, 10, seed=7)
    assert list(a) == list(b)
    assert list(a) != list(EpisodeSampler(LABELS, 5, 1, 2, 10, seed=8))
    r0 = EpisodeSampler(LABELS, 5, 1, 2, 10, seed=7, rank=0, world_size=2)
    r1 = EpisodeSampler(LABELS, 5, 1, 2, 10, seed=7, rank=1, world_size=2)
    assert [r0.episode(i) for i in range(10)] != [r1.episode(i) for i in range(10)]


def test_rank_episodes_are_the_global_sequence():
    single = EpisodeSampler(LABELS, 3, 1, 1, 20, seed=2)
    r1 = EpisodeSampler(LABELS, 3, 1, 1, 10, seed=2, rank=1, world_size=2)
    assert [r1.episode(i) for i in range(10)] == [single.episode(2 * i + 1) for i in range(10)]


def test_resume_with_start_yields_the_tail():
    full = list(EpisodeSampler(LABELS, 4, 1, 1, 12, seed=3))
    tail = EpisodeSampler(LABELS, 4, 1, 1, 12, seed=3, start=5)
    assert len(tail) == 7 and list(tail) == full[5:]


def test_too_few_classes_or_videos():
    with pytest.raises(DatasetError, match="at least 9 classes"):
        EpisodeSampler(LABELS, way=9, shot=1, query=1, num_episodes=1)
    with pytest.raises(DatasetError, match=r"the test split \(t.txt\) has 8"):
        EpisodeSampler(LABELS, way=9, shot=1, query=1, num_episodes=1, split="test split (t.txt)")
    labels = LABELS + [8, 8]
    names = {c: f"action {c}" for c in range(9)}
    with pytest.raises(DatasetError, match=r"of the train split have .*'action 8': 2") as err:
        EpisodeSampler(labels, way=5, shot=1, query=2, num_episodes=1, class_names=names, split="train split")
    assert "smaller shot" in str(err.value) and "class 8" not in str(err.value)
    with pytest.raises(DatasetError, match="'action 8': 2"):
        sample_episodes(labels, 5, 1, 2, 1, class_names=names)
    EpisodeSampler(labels, way=5, shot=1, query=1, num_episodes=1)


def test_fixed_sampler_shards_by_rank():
    episodes = sample_episodes(LABELS, 2, 1, 1, 7, seed=4)
    shards = [list(FixedEpisodeSampler(episodes, rank=r, world_size=3)) for r in range(3)]
    assert [len(s) for s in shards] == [3, 2, 2]
    assert shards[1] == [episodes[1].batch(), episodes[4].batch()]
    assert list(FixedEpisodeSampler(episodes)) == [e.batch() for e in episodes]


def test_save_load_round_trip_and_key_check(tmp_path):
    keys = [f"class{label}/video{i}" for i, label in enumerate(LABELS)]
    episodes = sample_episodes(LABELS, 5, 1, 2, 4, seed=5)
    path = save_episodes(tmp_path / "eps.json", episodes, {"seed": 5, "split": "test"}, dataset_keys=keys)
    loaded, meta = load_episodes(path, dataset_keys=keys)
    assert loaded == episodes
    assert meta == {"seed": 5, "split": "test", "way": 5, "shot": 1, "query": 2, "num_episodes": 4}
    shuffled = keys[1:] + keys[:1]
    with pytest.raises(DatasetError, match="does not match the dataset"):
        load_episodes(path, dataset_keys=shuffled)
    with pytest.raises(DatasetError, match="does not match"):
        load_episodes(path, dataset_keys=keys[:3])
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(DatasetError, match="not an stsampler episode file"):
        load_episodes(tmp_path / "bad.json")


def _item(label: int, index: int, m: int = 4, requested: int | None = None) -> dict:
    return {
        "frames": torch.full((m, 3, 8, 8), index, dtype=torch.uint8),
        "label": label,
        "index": index,
        "requested": index if requested is None else requested,
        "frame_indices": torch.arange(m, dtype=torch.int64) + index,
    }


def test_collate_episode_labels_and_shapes():
    episode = Episode(classes=(6, 2), support=(36, 37, 12, 13), query=(38, 14), draw_seed=0)
    batch = [_item(LABELS[i], i) for i in episode.indices]
    out = functools.partial(collate_episode, shot=2)(batch)
    assert out["frames"].shape == (6, 4, 3, 8, 8) and out["frames"].dtype == torch.uint8
    assert out["labels"].tolist() == [0, 0, 1, 1, 0, 1]
    assert out["class_ids"].tolist() == [6, 6, 2, 2, 6, 2]
    assert out["is_support"].tolist() == [True] * 4 + [False] * 2
    assert out["indices"].tolist() == out["requested"].tolist() == list(episode.indices)
    assert out["requested"].dtype == torch.int64
    assert out["frame_indices"].shape == (6, 4) and out["frame_indices"][1, 0] == 37
    with pytest.raises(ValueError, match="not an episode"):
        collate_episode(batch, shot=1)


def test_collate_keeps_requested_beside_the_stand_in():
    batch = [_item(0, 0), _item(1, 7), _item(0, 2, requested=1), _item(1, 6)]
    out = collate_episode(batch, shot=1)
    assert out["indices"].tolist() == [0, 7, 2, 6] and out["requested"].tolist() == [0, 7, 1, 6]
