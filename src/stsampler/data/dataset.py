"""VideoDataset: one decoded, transformed clip of M dense frames per item.

An item is ``{"frames": uint8 [M, 3, H, W], "label": int, "index": int, "requested": int,
"frame_indices": int64 [M]}``. A key is an int, ``(index, draw_seed)`` or ``(index, draw_seed,
members)`` as :meth:`stsampler.data.episodes.Episode.batch` yields (``members``: every dataset
index of the episode). Its random draws (training-time segment jitter, crop, flip) come from a
generator seeded by ``(seed, index)`` for an int key, or by ``(seed, index, draw_seed)``, so every
episode jitters differently yet reproducibly, in any worker.

Unreadable videos (:class:`stsampler.errors.VideoReadError`) are skipped: one warning per file,
recorded in :attr:`VideoDataset.bad_videos`, and the item is replaced by a stand-in of the same
class; ``requested`` names the index asked for, ``index`` the one decoded. A stand-in is never a
member of the episode, so no video appears twice in one episode: the episode's members of a
class share out the class's other videos (taken in class order, wrapping, from after the
class's first member), the ``r``-th member of the class taking every ``k``-th of them from
position ``r`` (``k``: the class's members in the episode), and each takes the first readable
one of its share. The choice depends only on the episode and on which files are readable, so a
fixed episode list re-draws exactly its affected members, identically on every run and in any
worker. With no readable video left in a member's share, :class:`stsampler.errors.DatasetError`
names split, class and video.

The split is judged as a whole: when the dataset is built, every listed file is checked cheaply
(it exists and is not empty), and from then on :class:`stsampler.errors.DatasetError` stops the run
as soon as more than ``max_bad_fraction`` of the listed videos (those missing from the data root
included) are missing or unreadable.

Evaluation clips are deterministic (segment centres, centre crop), so an evaluation dataset can
keep them in memory (``cache_bytes``): fixed test episodes draw each test video many times (10,000
5-way 1-shot episodes over a few hundred test videos read each one about a hundred times). A
training dataset with ``cache_bytes`` keeps every decoded frame of the videos it reads instead, and
cuts its random clips from memory.
"""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from stsampler.data.clip_cache import ByteBudgetLRU, DecodedVideoCache
from stsampler.data.indices import segment_indices
from stsampler.data.splits import VideoItem
from stsampler.data.transforms import ClipTransform
from stsampler.data.video import check_path, probe_video
from stsampler.errors import DatasetError, VideoReadError

__all__ = ["VideoDataset"]

_CHECK_HINT = "run `stsampler splits check` to list the missing and broken videos"


class VideoDataset(Dataset):
    """Clips of ``num_frames`` (M) frames from a list of videos.

    Args:
        items: the videos (e.g. ``Split.items``); ``label`` is the class index.
        num_frames: M, frames per clip, one per equal segment of the video (TSN).
        transform: applied to each decoded clip with the item's generator.
        train: random frame within each segment (otherwise the segment centre).
        seed: base seed of every random draw.
        decode_size: resize while decoding (int: short side; ``(H, W)``: fixed size); None keeps
            the stored size.
        max_bad_fraction: abort when more than this fraction of the split's listed videos are
            missing or unreadable.
        cache_bytes: keep decoded frames in memory up to this many bytes, dropping the least recently
            used (each DataLoader worker holds its own cache); 0 keeps none. Without ``train`` the
            finished items are kept (evaluation clips are deterministic); with ``train`` every frame
            of each video read (:class:`~stsampler.data.clip_cache.DecodedVideoCache`), so the
            random clips of later episodes index memory instead of decoding again.
        split: what the items are, for messages (e.g. ``"test split (lists/testlist03.txt)"``).
        missing: ``class/video_id`` of the listed videos absent from the data root (they count
            as bad in the fraction).

    Attributes:
        labels: the label of each index.
        class_names: label -> class name.
        num_classes: ``max(labels) + 1`` (labels are positions in a split's sorted class list).
        split, missing: as given.
        bad_videos: path -> reason, for every unreadable video met by this process (the files found
            missing or empty when the dataset was built included).

    Raises:
        DatasetError: no items, or more than ``max_bad_fraction`` of the listed videos missing or empty.
    """

    def __init__(
        self,
        items: Sequence[VideoItem],
        num_frames: int,
        transform: ClipTransform,
        train: bool = False,
        seed: int = 0,
        decode_size: int | tuple[int, int] | None = None,
        max_bad_fraction: float = 0.05,
        cache_bytes: int = 0,
        split: str = "dataset",
        missing: Sequence[str] = (),
    ):
        if not items:
            raise DatasetError(f"the {split} has no videos; check the split list and data root ({_CHECK_HINT})")
        if num_frames < 1:
            raise DatasetError(f"num_frames must be >= 1, got {num_frames}")
        self.items = list(items)
        self.num_frames = int(num_frames)
        self.transform = transform
        self.train = bool(train)
        self.seed = int(seed)
        self.decode_size = decode_size
        self.max_bad_fraction = float(max_bad_fraction)
        self.labels = [int(item.label) for item in self.items]
        self.class_names = {item.label: item.class_name for item in self.items}
        self.num_classes = max(self.labels) + 1
        self.split = split
        self.missing = list(missing)
        self.bad_videos: dict[str, str] = {}
        self._by_class = self.indices_by_class()
        self._check_files()
        self._items = ByteBudgetLRU(0 if self.train else cache_bytes)
        self._videos = DecodedVideoCache(cache_bytes if self.train else 0)

    def __len__(self) -> int:
        return len(self.items)

    def indices_by_class(self) -> dict[int, list[int]]:
        """Label -> dataset indices of that class, ascending."""
        by_class: dict[int, list[int]] = {}
        for index, label in enumerate(self.labels):
            by_class.setdefault(label, []).append(index)
        return by_class

    @property
    def keys(self) -> list[str]:
        """``class/video_id`` of each index."""
        return [item.key for item in self.items]

    def _generator(self, index: int, draw_seed: int | None) -> torch.Generator:
        entropy = [self.seed, index] if draw_seed is None else [self.seed, index, 1, int(draw_seed)]
        state = np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0]
        return torch.Generator().manual_seed(int(state) & (2**63 - 1))

    def _load(self, index: int, generator: torch.Generator) -> dict:
        path = self.items[index].path
        info = probe_video(path)
        frame_indices = segment_indices(info.num_frames, self.num_frames, random=self.train, generator=generator)
        frames = self._videos.read(path, frame_indices, size=self.decode_size, info=info)
        return {
            "frames": self.transform(frames, generator),
            "label": self.labels[index],
            "index": index,
            "frame_indices": frame_indices,
        }

    def _describe(self, index: int) -> str:
        item = self.items[index]
        return f"{item.key} (class {item.class_name!r} of the {self.split})"

    def _check_files(self) -> None:
        """Record the listed files that are missing or empty (a stat each), then judge the split."""
        for item in self.items:
            try:
                check_path(item.path)
            except VideoReadError as error:
                self.bad_videos[str(item.path)] = str(error)
        if self.bad_videos:
            warnings.warn(
                f"{len(self.bad_videos)} video(s) of the {self.split} are missing or empty and will be "
                f"replaced by others of their class, e.g. {'; '.join(list(self.bad_videos.values())[:3])}",
                RuntimeWarning,
                stacklevel=3,
            )
        self._check_bad_fraction()

    def _record_bad(self, index: int, error: VideoReadError) -> None:
        self.bad_videos[str(self.items[index].path)] = str(error)
        warnings.warn(f"skipping unreadable video {self._describe(index)}: {error}", RuntimeWarning, stacklevel=4)
        self._check_bad_fraction()

    def _check_bad_fraction(self) -> None:
        listed, bad = len(self.items) + len(self.missing), len(self.bad_videos) + len(self.missing)
        if bad > self.max_bad_fraction * listed:
            examples = [f"{key}: not under the data root" for key in self.missing[:3]]
            examples += list(self.bad_videos.values())[: 5 - len(examples)]
            raise DatasetError(
                f"{bad} of the {listed} videos of the {self.split} are missing or unreadable (more "
                f"than data.max_bad_fraction={self.max_bad_fraction:g}), e.g. {'; '.join(examples)}; "
                f"{_CHECK_HINT}, then re-download or re-extract them, or drop them from the split list"
            )

    def _stand_ins(self, index: int, members: Sequence[int]) -> list[int]:
        """The videos that may replace ``index``, in order of preference: its share of the class's
        videos outside ``members`` (see the module docstring)."""
        label = self.labels[index]
        same = [m for m in dict.fromkeys(members) if self.labels[m] == label]
        taken = set(same)
        videos = self._by_class[label]
        start = videos.index(same[0])
        others = [v for v in videos[start + 1 :] + videos[:start] if v not in taken]
        return others[same.index(index) :: len(same)]

    def __getitem__(self, key: int | tuple[int, int] | tuple[int, int, Sequence[int]]) -> dict:
        if isinstance(key, tuple):
            index, draw_seed = int(key[0]), int(key[1])
            members = tuple(int(m) for m in key[2]) if len(key) > 2 else (index,)
        else:
            index, draw_seed, members = int(key), None, (int(key),)
        if not 0 <= index < len(self.items):
            raise IndexError(f"index {index} outside a dataset of {len(self.items)} videos")
        if index not in members:
            raise IndexError(f"key {key!r}: index {index} is not among the episode's members")
        item = self._fetch(index, draw_seed)
        if item is None:
            item = next(filter(None, (self._fetch(c, draw_seed) for c in self._stand_ins(index, members))), None)
        if item is None:
            raise DatasetError(
                f"video {self._describe(index)} is unreadable and no other readable video of its class "
                f"can stand in for it without repeating a video of the episode; {_CHECK_HINT}"
            )
        return {**item, "requested": index}

    def _fetch(self, index: int, draw_seed: int | None) -> dict | None:
        """The item of ``index`` (from the cache when there), or None when the video is unreadable."""
        cached = self._items.get(index)
        if cached is not None:
            return _copy_item(cached)
        if str(self.items[index].path) in self.bad_videos:
            return None
        try:
            item = self._load(index, self._generator(index, draw_seed))
        except VideoReadError as error:
            self._record_bad(index, error)
            return None
        if self._items.budget_bytes:
            self._items.put(index, _copy_item(item), item["frames"].nbytes)
        return item


def _copy_item(item: dict) -> dict:
    """``item`` with its tensors cloned (the cache's copy never leaves it)."""
    return {key: value.clone() if isinstance(value, torch.Tensor) else value for key, value in item.items()}
