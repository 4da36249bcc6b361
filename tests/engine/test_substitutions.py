"""Tests of stsampler.engine.substitutions: counting the videos the data layer replaced."""
from __future__ import annotations

import torch

from stsampler.engine.substitutions import Substitutions, pairs_text, substitution_warning

KEYS = ["a/v0", "a/v1", "b/v0", "b/v1"]


def _batch(indices: list[int], requested: list[int] | None = None) -> dict[str, torch.Tensor]:
    batch = {"indices": torch.tensor(indices)}
    if requested is not None:
        batch["requested"] = torch.tensor(requested)
    return batch


def test_record_counts_each_pair_and_returns_the_new_ones() -> None:
    subs = Substitutions()
    assert subs.record(_batch([0, 2]), KEYS) == [] and subs.total == 0  # no "requested": nothing replaced
    assert subs.record(_batch([1, 2], [0, 2]), KEYS) == [("a/v0", "a/v1")]
    assert subs.record(_batch([1, 3], [0, 2]), KEYS) == [("b/v0", "b/v1")]  # a/v0 -> a/v1 seen before
    assert subs.total == 3
    assert subs.to_list() == [
        {"requested": "a/v0", "replacement": "a/v1", "count": 2},
        {"requested": "b/v0", "replacement": "b/v1", "count": 1},
    ]


def test_entries_round_trip_and_add_up() -> None:
    subs = Substitutions([{"requested": "b/v0", "replacement": "b/v1", "count": 2}])
    other = Substitutions()
    other.record(_batch([3], [2]), KEYS)
    subs.update(other)
    assert Substitutions(subs.to_list()).to_list() == [{"requested": "b/v0", "replacement": "b/v1", "count": 3}]


def test_messages() -> None:
    assert substitution_warning(0, "out.json") is None
    assert substitution_warning(2, "out.json").startswith("warning: 2 time(s) an unreadable video was replaced")
    entries = [{"requested": "a/v0", "replacement": "a/v1", "count": 1},
               {"requested": "b/v0", "replacement": "b/v1", "count": 4}]
    assert pairs_text(entries) == "a/v0 -> a/v1, b/v0 -> b/v1"
