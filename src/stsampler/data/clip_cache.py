"""In-memory caches of decoded frames, each within a byte budget.

:class:`ByteBudgetLRU` is the one least-recently-used store; :class:`DecodedVideoCache` uses it for
training on small datasets, and :class:`stsampler.data.dataset.VideoDataset` for evaluation clips.

Training draws random frame indices in every episode, so the clips themselves never repeat, but
the videos do: an episodic run over a few hundred short videos decodes each of them hundreds of
times. :class:`DecodedVideoCache` decodes every frame of a video once, at the decode size, keeps
the result (uint8 ``[N, 3, H, W]``) in memory and serves any frame indices from it. The cached
frames are those :func:`stsampler.data.video.read_frames` returns for all indices, so a clip served
from the cache equals the clip decoded directly.

The cache is least-recently-used with a byte budget. It lives in one process: a dataset holding
one gives each DataLoader worker its own copy (filled by the videos that worker reads), so the
memory used is up to ``workers x budget``.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from pathlib import Path

import torch

from stsampler.data.video import VideoInfo, probe_video, read_frames

__all__ = ["ByteBudgetLRU", "DecodedVideoCache"]

DecodeSize = int | tuple[int, int] | None


def _size_key(size: DecodeSize) -> int | tuple[int, int] | None:
    """A hashable, canonical form of a ``read_frames`` size (a list ``[H, W]`` becomes a tuple)."""
    if size is None or isinstance(size, int):
        return size
    height, width = size
    return int(height), int(width)


class ByteBudgetLRU:
    """A mapping that holds values up to ``budget_bytes`` in total, dropping the least recently used.

    Each value is stored with its size in bytes; a value larger than the whole budget is not kept.
    """

    def __init__(self, budget_bytes: int) -> None:
        if budget_bytes < 0:
            raise ValueError(f"budget_bytes must be >= 0, got {budget_bytes}")
        self.budget_bytes = int(budget_bytes)
        self.used_bytes = 0
        self._entries: OrderedDict[Hashable, tuple[object, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def get(self, key: Hashable) -> object | None:
        """The value under ``key`` (now the most recently used), or None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return entry[0]

    def put(self, key: Hashable, value: object, nbytes: int) -> None:
        """Hold ``value`` under ``key``, dropping least recently used values beyond the budget."""
        if nbytes > self.budget_bytes:
            return
        if key in self._entries:
            self.used_bytes -= self._entries.pop(key)[1]
        self._entries[key] = (value, nbytes)
        self.used_bytes += nbytes
        while self.used_bytes > self.budget_bytes:
            _, (_, dropped) = self._entries.popitem(last=False)
            self.used_bytes -= dropped

    def clear(self) -> None:
        """Drop every value."""
        self._entries.clear()
        self.used_bytes = 0


class DecodedVideoCache:
    """All frames of the videos read first, decoded once, within a byte budget.

    Videos are kept while they fit. Once the budget is full, the kept videos stay and every other
    read decodes just the frames it asks for, as without the cache: training draws videos uniformly
    at random, so a least-recently-used policy over a dataset larger than the budget would miss
    almost every time and decode whole videos for a few frames each, slower than no cache at all.

    Args:
        budget_bytes: the most bytes of frames held. A video that does not fit in what is left is
            not kept (its frames are decoded directly).

    Attributes:
        used_bytes: bytes of frames held now.
        full: a video did not fit: no more are kept, and other reads decode only what they ask for.
    """

    def __init__(self, budget_bytes: int) -> None:
        self._videos = ByteBudgetLRU(budget_bytes)
        self.clear()

    @property
    def budget_bytes(self) -> int:
        return self._videos.budget_bytes

    @property
    def used_bytes(self) -> int:
        return self._videos.used_bytes

    def __len__(self) -> int:
        return len(self._videos)

    def __contains__(self, key: tuple[str | os.PathLike, DecodeSize]) -> bool:
        path, size = key
        return (str(path), _size_key(size)) in self._videos

    def read(
        self,
        path: str | os.PathLike,
        indices: Sequence[int] | torch.Tensor,
        size: DecodeSize = None,
        info: VideoInfo | None = None,
    ) -> torch.Tensor:
        """The frames at ``indices`` as uint8 ``[len(indices), 3, H, W]``, equal to
        ``read_frames(path, indices, size)``.

        The first read of ``(path, size)`` decodes all of the video's frames and keeps them (when
        they fit the budget); later reads index the kept frames. The result is a new tensor: changing
        it leaves the cache alone.

        Args:
            path: a video file or frame folder.
            indices: frame indices (any order, repeats allowed), checked against the frame count.
            size: the decode size, as for :func:`read_frames` (part of the cache key).
            info: the :func:`probe_video` result of ``path``, if the caller has it.

        Raises:
            VideoReadError: as :func:`read_frames`.
        """
        key = (str(path), _size_key(size))
        frames = self._videos.get(key)
        if frames is None:
            if self.full:  # decode just the requested frames
                return read_frames(path, indices, size=size, info=info)
            info = probe_video(path) if info is None else info
            frames = read_frames(path, range(info.num_frames), size=size, info=info)
            if self.used_bytes + frames.nbytes <= self.budget_bytes:
                self._videos.put(key, frames, frames.nbytes)
            else:
                self.full = True
        index = torch.as_tensor(indices, dtype=torch.int64).reshape(-1)
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= frames.shape[0]):
            # Out of range: let the reader raise its error naming the file and the valid range.
            return read_frames(Path(path), index, size=size, info=info)
        return frames[index]

    def clear(self) -> None:
        """Drop every cached video (a zero budget stays full: it keeps none)."""
        self._videos.clear()
        self.full = self.budget_bytes == 0
