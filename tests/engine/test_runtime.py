"""Tests of stsampler.engine.runtime: autocast choice, batch preparation, the episode loader."""
from __future__ import annotations

import os

import pytest
import torch

from stsampler.data.episodes import Episode, FixedEpisodeSampler
from stsampler.data.transforms import normalize
from stsampler.engine.runtime import (
    autocast,
    episode_batches,
    episode_loader,
    leave_cores_for_workers,
    prepare_batch,
    resolve_amp,
)
from stsampler.errors import ConfigError, DatasetError

CPU = torch.device("cpu")
M, SIZE = 2, 4


class _Clips(torch.utils.data.Dataset):
    """Four videos of two classes (labels 0, 0, 1, 1); video i's frames all hold the value 10 * i."""

    labels = [0, 0, 1, 1]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, key) -> dict:
        index = key[0]
        return {
            "frames": torch.full((M, 3, SIZE, SIZE), 10 * index, dtype=torch.uint8),
            "label": self.labels[index],
            "index": index,
            "frame_indices": torch.arange(M),
        }


class _Broken(_Clips):
    """Stands in for a dataset whose every video is unreadable."""

    def __getitem__(self, key) -> dict:
        raise DatasetError("every video of class 'a' of the test split is unreadable (e.g. /data/a/v0.mp4)")


EPISODE = Episode(classes=(1, 0), support=(2, 0), query=(3, 1), draw_seed=0)


def test_amp_resolution_on_cpu() -> None:
    assert resolve_amp("auto", CPU, "resnet50") == torch.bfloat16
    assert resolve_amp("auto", CPU, "smallcnn") is None
    assert resolve_amp("none", CPU, "resnet50") is None
    assert resolve_amp("bf16", CPU, "smallcnn") == torch.bfloat16
    with pytest.raises(ConfigError, match="fp16"):
        resolve_amp("fp16", CPU, "resnet50")


def test_autocast_runs_in_the_dtype_or_not_at_all() -> None:
    a, b = torch.ones(2, 2), torch.ones(2, 2)
    with autocast(CPU, torch.bfloat16):
        assert (a @ b).dtype == torch.bfloat16
    with autocast(CPU, None):
        assert (a @ b).dtype == torch.float32


def test_prepare_batch_splits_the_episode_and_normalises_on_the_device() -> None:
    (batch,) = list(episode_batches(episode_loader(_Clips(), FixedEpisodeSampler([EPISODE]), 1, 0, CPU)))
    inputs = prepare_batch(batch, CPU, way=2, shot=1)
    assert inputs["clips"].shape == (4, M, 3, SIZE, SIZE) and inputs["clips"].dtype == torch.float32
    assert torch.equal(inputs["clips"], normalize(batch["frames"]))
    assert inputs["is_support"].tolist() == [True, True, False, False]
    assert inputs["support_labels"].tolist() == [0, 1] and inputs["query_labels"].tolist() == [0, 1]
    assert inputs["class_ids"].tolist() == [1, 0, 1, 0]


def test_the_loader_leaves_the_global_random_state_alone() -> None:
    state = torch.get_rng_state()
    loader = episode_loader(_Clips(), FixedEpisodeSampler([EPISODE, EPISODE]), 1, 0, CPU, seed=5)
    assert len(list(episode_batches(loader))) == 2
    assert torch.equal(torch.get_rng_state(), state)


def test_model_threads_make_room_for_the_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    threads = torch.get_num_threads()
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    try:
        torch.set_num_threads(4)
        leave_cores_for_workers(0)
        assert torch.get_num_threads() == 4
        leave_cores_for_workers(1)
        assert torch.get_num_threads() == 3
        leave_cores_for_workers(6)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("workers", [0, 1])
def test_a_data_error_in_a_worker_reads_as_without_workers(workers: int) -> None:
    loader = episode_loader(_Broken(), FixedEpisodeSampler([EPISODE]), 1, workers, CPU)
    with pytest.raises(DatasetError) as info:
        list(episode_batches(loader))
    assert str(info.value) == "every video of class 'a' of the test split is unreadable (e.g. /data/a/v0.mp4)"
