"""Few-shot episodes: seeded, rank-aware sampling, fixed episode lists on disk, and collation.

An episode draws N classes (``way``), K support (``shot``) and Q query (``query``) videos per
class. Its dataset indices are ordered support first, class-major (K per class in the episode's
class order), then the queries, class-major (Q per class). Each episode carries a ``draw_seed``
that :class:`stsampler.data.dataset.VideoDataset` uses for its random frame/crop draws, so the
same episode decodes the same clips on every run while different episodes jitter differently.

Use with a ``DataLoader``::

    sampler = EpisodeSampler(dataset.labels, way=5, shot=1, query=5, num_episodes=1000, seed=0,
                             class_names=dataset.class_names, split=dataset.split)
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=4,
                        collate_fn=functools.partial(collate_episode, shot=1))

``collate_episode`` needs ``shot`` (the batch carries no episode structure): N is the number of
distinct classes in the batch, the first N*K items are the support set.

Every dataset key names the episode's members (:data:`EpisodeKey`), so the dataset replaces an
unreadable video by a stand-in from outside the episode; the collated batch says which
(``requested`` vs ``indices``), for the caller to record.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler

from stsampler.errors import DatasetError
from stsampler.io import atomic_write_json

__all__ = [
    "Episode",
    "EpisodeKey",
    "EpisodeSampler",
    "FixedEpisodeSampler",
    "sample_episodes",
    "save_episodes",
    "load_episodes",
    "collate_episode",
]

_FORMAT = "stsampler-episodes-1"

#: A dataset key of one episode member: ``(dataset_index, draw_seed, members)``.
EpisodeKey = tuple[int, int, tuple[int, ...]]


@dataclass(frozen=True)
class Episode:
    """One few-shot task.

    Attributes:
        classes: the N dataset labels, in the episode's class order (episode label = position).
        support: N*K dataset indices, class-major in ``classes`` order.
        query: N*Q dataset indices, class-major in ``classes`` order.
        draw_seed: seed of the episode's random frame and crop draws.
    """

    classes: tuple[int, ...]
    support: tuple[int, ...]
    query: tuple[int, ...]
    draw_seed: int

    @property
    def indices(self) -> tuple[int, ...]:
        """Support then query indices, the order the sampler yields and the collate expects."""
        return self.support + self.query

    def batch(self) -> list[EpisodeKey]:
        """``[(dataset_index, draw_seed, members), ...]`` for support then query (dataset keys);
        ``members`` is :attr:`indices`, so that a stand-in for an unreadable video is never
        another member of the episode (see :class:`stsampler.data.dataset.VideoDataset`)."""
        return [(index, self.draw_seed, self.indices) for index in self.indices]


class EpisodeSampler(Sampler[list[EpisodeKey]]):
    """Draws episodes from dataset labels; episode ``i`` of rank ``r`` is a deterministic
    function of ``(seed, i * world_size + r)``, so ranks draw different episodes and a run resumed
    with ``start=i`` yields exactly the tail of the uninterrupted run.

    Args:
        labels: the dataset label of each index.
        way, shot, query: N, K, Q.
        num_episodes: episodes per rank; ``__iter__`` yields episodes ``start .. num_episodes-1``.
        seed: base seed.
        rank, world_size: this process's share (distributed training).
        start: first episode to yield (resume).
        class_names: label -> class name, and ``split`` what the labels are (e.g. ``"train split
            (lists/trainlist03.txt)"``): both for messages (:attr:`VideoDataset.class_names` and
            :attr:`VideoDataset.split`).

    Raises:
        DatasetError: bad sizes, fewer classes than ``way`` or a class with fewer than
            ``shot + query`` videos (named).
    """

    def __init__(
        self,
        labels: Sequence[int],
        way: int,
        shot: int,
        query: int,
        num_episodes: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        start: int = 0,
        class_names: Mapping[int, str] | None = None,
        split: str = "dataset",
    ):
        if way < 1 or shot < 1 or query < 0 or num_episodes < 0:
            raise DatasetError(
                f"episode sizes must be way >= 1, shot >= 1, query >= 0, num_episodes >= 0; got "
                f"way={way} shot={shot} query={query} num_episodes={num_episodes}"
            )
        if not 0 <= rank < world_size:
            raise DatasetError(f"rank {rank} is outside world size {world_size}")
        if not 0 <= start <= num_episodes:
            raise DatasetError(f"start episode {start} is outside 0..{num_episodes}")
        self.way, self.shot, self.query = way, shot, query
        self.num_episodes, self.seed, self.rank, self.world_size, self.start = (
            num_episodes, seed, rank, world_size, start,
        )
        by_class: dict[int, list[int]] = {}
        for index, label in enumerate(labels):
            by_class.setdefault(int(label), []).append(index)
        self._classes = sorted(by_class)
        self._members = [np.asarray(by_class[c], dtype=np.int64) for c in self._classes]
        if len(self._classes) < way:
            raise DatasetError(
                f"{way}-way episodes need at least {way} classes, the {split} has {len(self._classes)}; "
                "use a smaller way or add classes to the split list"
            )
        need = shot + query
        short = {c: len(m) for c, m in zip(self._classes, self._members, strict=True) if len(m) < need}
        if short:
            names = class_names or {}
            listed = ", ".join(f"{names.get(c, f'label {c}')!r}: {n}" for c, n in sorted(short.items())[:10])
            raise DatasetError(
                f"{len(short)} class(es) of the {split} have fewer than shot+query = {need} videos "
                f"({listed}{', ...' if len(short) > 10 else ''}); use a smaller shot/query or drop "
                "those classes from the split list"
            )

    def episode(self, i: int) -> Episode:
        """Episode ``i`` of this rank."""
        rng = np.random.default_rng([self.seed, i * self.world_size + self.rank])
        picks = rng.choice(len(self._classes), size=self.way, replace=False)
        support, query = [], []
        for p in picks:
            chosen = rng.choice(self._members[p], size=self.shot + self.query, replace=False)
            support.extend(int(x) for x in chosen[: self.shot])
            query.extend(int(x) for x in chosen[self.shot :])
        draw_seed = int(rng.integers(0, 2**63 - 1))
        classes = tuple(self._classes[p] for p in picks)
        return Episode(classes, tuple(support), tuple(query), draw_seed)

    def __iter__(self) -> Iterator[list[EpisodeKey]]:
        for i in range(self.start, self.num_episodes):
            yield self.episode(i).batch()

    def __len__(self) -> int:
        return self.num_episodes - self.start


def sample_episodes(
    labels: Sequence[int],
    way: int,
    shot: int,
    query: int,
    num_episodes: int,
    seed: int = 0,
    class_names: Mapping[int, str] | None = None,
    split: str = "dataset",
) -> list[Episode]:
    """A fixed list of ``num_episodes`` episodes (e.g. for evaluation on identical tasks);
    ``class_names`` and ``split`` name what is wrong in errors (see :class:`EpisodeSampler`)."""
    sampler = EpisodeSampler(labels, way, shot, query, num_episodes, seed, class_names=class_names, split=split)
    return [sampler.episode(i) for i in range(num_episodes)]


class FixedEpisodeSampler(Sampler[list[EpisodeKey]]):
    """Yields the batches of a given episode list; episode ``i`` goes to rank ``i % world_size``."""

    def __init__(self, episodes: Sequence[Episode], rank: int = 0, world_size: int = 1):
        if not 0 <= rank < world_size:
            raise DatasetError(f"rank {rank} is outside world size {world_size}")
        self.episodes = list(episodes)[rank::world_size]

    def __iter__(self) -> Iterator[list[EpisodeKey]]:
        for episode in self.episodes:
            yield episode.batch()

    def __len__(self) -> int:
        return len(self.episodes)


def _episode_shape(episodes: Sequence[Episode]) -> tuple[int, int, int]:
    shapes = {
        (len(e.classes), len(e.support) // max(len(e.classes), 1), len(e.query) // max(len(e.classes), 1))
        for e in episodes
    }
    if len(shapes) != 1:
        raise ValueError(f"episodes of different sizes cannot share one file: {sorted(shapes)}")
    return shapes.pop()


def save_episodes(
    path: str | os.PathLike,
    episodes: Sequence[Episode],
    meta: dict,
    dataset_keys: Sequence[str] | None = None,
) -> Path:
    """Write episodes as JSON, atomically.

    The file holds ``meta`` (the caller's: seed, split, ...) completed with ``way``, ``shot`` and
    ``query`` taken from the episodes, the episodes, and, when ``dataset_keys`` (the
    ``class/video_id`` of each dataset index) is given, the key of every index used, so that
    :func:`load_episodes` can check the list against a dataset.
    """
    way, shot, query = _episode_shape(episodes)
    meta = {**meta, "way": way, "shot": shot, "query": query, "num_episodes": len(episodes)}
    doc: dict = {
        "format": _FORMAT,
        "meta": meta,
        "episodes": [
            {"classes": list(e.classes), "support": list(e.support), "query": list(e.query), "draw_seed": e.draw_seed}
            for e in episodes
        ],
    }
    if dataset_keys is not None:
        used = sorted({i for e in episodes for i in e.indices})
        doc["keys"] = {str(i): dataset_keys[i] for i in used}
    return atomic_write_json(path, doc)


def load_episodes(
    path: str | os.PathLike, dataset_keys: Sequence[str] | None = None
) -> tuple[list[Episode], dict]:
    """Read a file written by :func:`save_episodes`; returns ``(episodes, meta)``.

    With ``dataset_keys``, every stored index must name the same ``class/video_id`` in the
    dataset; otherwise :class:`DatasetError` (the episodes were made for another split or data
    root).
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read episode file {path}: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
        raise DatasetError(f"{path} is not an stsampler episode file (format {_FORMAT})")
    try:
        episodes = [
            Episode(tuple(e["classes"]), tuple(e["support"]), tuple(e["query"]), int(e["draw_seed"]))
            for e in doc["episodes"]
        ]
    except (KeyError, TypeError) as exc:
        raise DatasetError(f"{path}: malformed episode entry ({exc}); regenerate the file") from exc
    if dataset_keys is not None:
        stored = doc.get("keys")
        if stored is None:
            raise DatasetError(f"{path} stores no video keys, so it cannot be checked against the dataset")
        wrong = [
            (int(i), key, dataset_keys[int(i)] if int(i) < len(dataset_keys) else None)
            for i, key in stored.items()
            if int(i) >= len(dataset_keys) or dataset_keys[int(i)] != key
        ]
        if wrong:
            i, want, got = wrong[0]
            raise DatasetError(
                f"{path} does not match the dataset: {len(wrong)} index(es) differ, e.g. index {i} is "
                f"{want!r} in the file but {got!r} in the dataset; regenerate the episodes for this split"
            )
    return episodes, doc["meta"]


def collate_episode(batch: list[dict], shot: int) -> dict[str, torch.Tensor]:
    """Stack one episode's items (support first, class-major, then queries).

    Args:
        batch: ``VideoDataset`` items in the sampler's order.
        shot: K; N is the number of distinct classes in the batch, so the support set is the
            first N*K items.

    Returns:
        ``frames`` uint8 ``[B, M, 3, H, W]``; ``labels`` int64 ``[B]`` episode labels 0..N-1 (the
        position of the item's class among the support classes in order of first appearance);
        ``class_ids`` int64 ``[B]`` dataset labels; ``is_support`` bool ``[B]``; ``indices`` int64
        ``[B]`` the dataset indices decoded; ``requested`` int64 ``[B]`` the indices asked for
        (they differ where an unreadable video was replaced by a stand-in; an item without
        ``"requested"`` was decoded as asked); ``frame_indices``
        int64 ``[B, M]``.
    """
    class_ids = torch.tensor([int(item["label"]) for item in batch], dtype=torch.int64)
    order = list(dict.fromkeys(class_ids.tolist()))
    num_support = len(order) * shot
    support = class_ids[:num_support].tolist()
    if num_support > len(batch) or any(support.count(c) != shot for c in order):
        raise ValueError(
            f"batch of {len(batch)} items is not an episode with {shot} support video(s) per class "
            "ahead of the queries"
        )
    position = {c: i for i, c in enumerate(order)}
    return {
        "frames": torch.stack([item["frames"] for item in batch]),
        "labels": torch.tensor([position[c] for c in class_ids.tolist()], dtype=torch.int64),
        "class_ids": class_ids,
        "is_support": torch.arange(len(batch)) < num_support,
        "indices": torch.tensor([int(item["index"]) for item in batch], dtype=torch.int64),
        "requested": torch.tensor([int(item.get("requested", item["index"])) for item in batch], dtype=torch.int64),
        "frame_indices": torch.stack([torch.as_tensor(item["frame_indices"], dtype=torch.int64) for item in batch]),
    }
