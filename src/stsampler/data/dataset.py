"""VideoDataset: one decoded, transformed clip of M dense frames per item.

An item is ``{"frames": uint8 [M, 3, H, W], "label": int, "index": int, "frame_indices": int64
[M]}``. Its random draws (training-time segment jitter, crop, flip) come from a generator seeded
by ``(seed, index)`` for an int key, or by ``(seed, index, draw_seed)`` for a key ``(index,
draw_seed)`` as :class:`stsampler.data.episodes.EpisodeSampler` yields, so every episode jitters
differently yet reproducibly, in any worker.

Unreadable videos (:class:`stsampler.errors.VideoReadError`) are skipped: one warning per file,
recorded in :attr:`VideoDataset.bad_videos`, and the item is replaced by the next readable video of
the same class (deterministically; ``index`` in the result then names the replacement). When more
than ``max_bad_fraction`` of the distinct videos this process has tried are bad (counted once at
least :data:`MIN_VIDEOS_BEFORE_ABORT` have been tried), :class:`stsampler.errors.DatasetError`
stops the run with a summary.

Evaluation clips are deterministic (segment centres, centre crop), so an evaluation dataset can
keep them in memory (``cache_bytes``): fixed test episodes draw each test video many times (10,000
5-way 1-shot episodes over a few hundred test videos read each one about a hundred times).
"""
from __future__ import annotations

import warnings
from collections import OrderedDict
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from stsampler.data.indices import segment_indices
from stsampler.data.splits import VideoItem
from stsampler.data.transforms import ClipTransform
from stsampler.data.video import probe_video, read_frames
from stsampler.errors import DatasetError, VideoReadError

__all__ = ["VideoDataset", "MIN_VIDEOS_BEFORE_ABORT"]

#: The bad-video fraction is only judged once this many distinct videos have been tried.
MIN_VIDEOS_BEFORE_ABORT = 10


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
        max_bad_fraction: abort when more than this fraction of the videos tried are unreadable.
        cache_bytes: without ``train``, keep decoded items in memory up to this many bytes of frames,
            dropping the least recently used (each DataLoader worker holds its own cache); 0 keeps none.

    Attributes:
        labels: the label of each index.
        num_classes: ``max(labels) + 1`` (labels are positions in a split's sorted class list).
        bad_videos: path -> reason, for every unreadable video met by this process.
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
    ):
        if not items:
            raise DatasetError("the dataset has no videos; check the split list and data root (`stsampler splits check`)")
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
        self.num_classes = max(self.labels) + 1
        self.bad_videos: dict[str, str] = {}
        self._tried: set[int] = set()
        self._by_class = self.indices_by_class()
        self.cache_bytes = 0 if self.train else int(cache_bytes)
        self._cache: OrderedDict[int, dict] = OrderedDict()
        self._cached_bytes = 0

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
        frames = read_frames(path, frame_indices, size=self.decode_size, info=info)
        return {
            "frames": self.transform(frames, generator),
            "label": self.labels[index],
            "index": index,
            "frame_indices": frame_indices,
        }

    def _record_bad(self, index: int, error: VideoReadError) -> None:
        path = str(self.items[index].path)
        self.bad_videos[path] = str(error)
        warnings.warn(f"skipping unreadable video {path}: {error}", RuntimeWarning, stacklevel=3)

    def _check_bad_fraction(self) -> None:
        tried, bad = len(self._tried), len(self.bad_videos)
        if bad and tried >= MIN_VIDEOS_BEFORE_ABORT and bad > self.max_bad_fraction * tried:
            examples = "; ".join(f"{p}: {m}" for p, m in list(self.bad_videos.items())[:5])
            raise DatasetError(
                f"{bad} of the {tried} videos read so far are unreadable (more than "
                f"{self.max_bad_fraction:.0%}), e.g. {examples}. Run `stsampler splits check` to "
                "list missing or broken videos, re-download or re-extract them, or drop them from the split"
            )

    def _candidates(self, index: int) -> list[int]:
        """``index`` then the other videos of its class, in order, wrapping around."""
        members = self._by_class[self.labels[index]]
        start = members.index(index)
        return members[start:] + members[:start]

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        index, draw_seed = (int(key[0]), int(key[1])) if isinstance(key, tuple) else (int(key), None)
        if not 0 <= index < len(self.items):
            raise IndexError(f"index {index} outside a dataset of {len(self.items)} videos")
        if index in self._cache:
            self._cache.move_to_end(index)
            return _copy_item(self._cache[index])
        item = self._read(index, draw_seed)
        if self.cache_bytes:
            self._remember(index, item)
        return item

    def _remember(self, index: int, item: dict) -> None:
        """Cache ``item`` under ``index``, dropping the least recently used items beyond ``cache_bytes``."""
        size = item["frames"].nbytes
        if size > self.cache_bytes:
            return
        self._cache[index] = _copy_item(item)
        self._cached_bytes += size
        while self._cached_bytes > self.cache_bytes:
            _, dropped = self._cache.popitem(last=False)
            self._cached_bytes -= dropped["frames"].nbytes

    def _read(self, index: int, draw_seed: int | None) -> dict:
        """Decode ``index``, or the next readable video of its class."""
        for candidate in self._candidates(index):
            if str(self.items[candidate].path) in self.bad_videos:
                continue
            self._tried.add(candidate)
            try:
                item = self._load(candidate, self._generator(candidate, draw_seed))
            except VideoReadError as error:
                self._record_bad(candidate, error)
                self._check_bad_fraction()
                continue
            self._check_bad_fraction()
            return item
        item = self.items[index]
        raise DatasetError(
            f"every video of class {item.class_name!r} is unreadable (e.g. {item.path}); "
            "run `stsampler splits check` and fix the data"
        )


def _copy_item(item: dict) -> dict:
    """``item`` with its tensors cloned (the cache's copy never leaves it)."""
    return {key: value.clone() if isinstance(value, torch.Tensor) else value for key, value in item.items()}
