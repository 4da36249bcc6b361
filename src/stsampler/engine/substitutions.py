"""The record of videos the data layer replaced: an unreadable video is served by another of its class.

Training and evaluation count the replacements of every episode (:class:`Substitutions`), keep them
in checkpoints and results, and tell the user about them (:func:`substitution_warning`,
:func:`pairs_text`).
"""
from __future__ import annotations

from collections import Counter
from typing import Iterable, Sequence

import torch


class Substitutions:
    """How often each requested video was served by another video of its class (it was unreadable).

    A collated batch's ``requested`` int64 ``[B]`` holds the dataset indices the episode asked for and
    its ``indices`` int64 ``[B]`` the ones decoded; batches without ``requested`` had no substitution.
    Entries are ``{"requested": "class/video_id", "replacement": "class/video_id", "count": n}``.
    """

    def __init__(self, entries: Iterable[dict] = ()) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        for entry in entries:
            self.counts[(entry["requested"], entry["replacement"])] += int(entry["count"])

    def record(self, batch: dict[str, torch.Tensor], keys: Sequence[str]) -> list[tuple[str, str]]:
        """Count the substitutions of one collated episode (``keys``: the dataset's ``class/video_id``
        per index); returns the (requested, replacement) pairs not seen before."""
        used = batch["indices"]
        requested = batch.get("requested", used)
        new = []
        for i in (requested != used).nonzero().flatten().tolist():  # only the substituted positions
            pair = (keys[int(requested[i])], keys[int(used[i])])
            if pair not in self.counts:
                new.append(pair)
            self.counts[pair] += 1
        return new

    def update(self, other: Substitutions) -> None:
        """Add ``other``'s counts to these."""
        self.counts.update(other.counts)

    @property
    def total(self) -> int:
        """The number of substituted videos over all episodes recorded."""
        return sum(self.counts.values())

    def to_list(self) -> list[dict]:
        """The JSON-ready entries, sorted by requested video."""
        return [{"requested": r, "replacement": u, "count": n} for (r, u), n in sorted(self.counts.items())]


def substitution_warning(count: int, where: str) -> str | None:
    """One line telling the user that ``count`` videos were replaced (None when there were none)."""
    if not count:
        return None
    return (
        f"warning: {count} time(s) an unreadable video was replaced by another video of its class; "
        f"each is listed under 'substitutions' in {where}; run `stsampler splits check` to find the broken files"
    )


def pairs_text(entries: Sequence[dict]) -> str:
    """``requested -> replacement`` of :class:`Substitutions` entries, comma-separated."""
    return ", ".join(f"{e['requested']} -> {e['replacement']}" for e in entries)
