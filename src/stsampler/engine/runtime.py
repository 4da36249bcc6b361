"""Running one episode on a device: what training and evaluation share.

Mixed-precision resolution (:func:`resolve_amp`, :func:`autocast`), moving a collated episode to the
device (:func:`prepare_batch`), the episode loader (:func:`episode_loader`, which keeps the model's
CPU threads off the decoding workers' cores) and its iteration (:func:`episode_batches`, which gives
a worker's library error its own message back).
"""
from __future__ import annotations

import contextlib
import functools
import os
from typing import Any, Iterable, Iterator

import torch
from torch.utils.data import DataLoader

from stsampler.data.dataset import VideoDataset
from stsampler.data.episodes import collate_episode
from stsampler.data.transforms import normalize
from stsampler.errors import ConfigError, StsamplerError


def resolve_amp(amp: str, device: torch.device, backbone: str) -> torch.dtype | None:
    """The autocast dtype for ``train.amp`` on ``device`` (None: full fp32).

    ``auto``: bf16 on CUDA when the card supports it, else fp16; on CPU bf16 for ResNet backbones
    (where oneDNN's bf16 kernels are faster) and fp32 otherwise (the small CNN is slower in bf16).
    """
    if amp == "none":
        return None
    if amp == "fp16":
        if device.type != "cuda":
            raise ConfigError("train.amp=fp16 needs a CUDA device; use bf16 or none on CPU")
        return torch.float16
    if amp == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if backbone.startswith("resnet") else None


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for ``dtype`` on ``device``'s type, or a no-op for None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def prepare_batch(batch: dict[str, torch.Tensor], device: torch.device, way: int, shot: int) -> dict[str, torch.Tensor]:
    """Move a collated episode to ``device`` and normalise its frames there.

    Returns ``clips`` float ``[B, M, 3, H, W]``, ``is_support`` bool ``[B]``, ``support_labels``
    ``[way*shot]``, ``query_labels`` ``[Q]`` (episode labels) and ``class_ids`` ``[B]``. The support
    rows lead the batch (the episode order), so slicing needs no host-device synchronisation.
    """
    num_support = way * shot
    labels = batch["labels"].to(device, non_blocking=True)
    return {
        "clips": normalize(batch["frames"].to(device, non_blocking=True)),
        "is_support": batch["is_support"].to(device, non_blocking=True),
        "support_labels": labels[:num_support],
        "query_labels": labels[num_support:],
        "class_ids": batch["class_ids"].to(device, non_blocking=True),
    }


def leave_cores_for_workers(workers: int) -> None:
    """On the CPU, keep the model's threads off the cores the decoding workers use.

    Intra-op threads that share cores with busy worker processes stall one another: on 2 cores,
    one worker beside 2 model threads made a learned-sampler training step 7x slower than
    decoding in the main process. The model keeps ``cores - workers`` threads (at least one).
    """
    if workers > 0:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        torch.set_num_threads(max(1, min(torch.get_num_threads(), cores - workers)))


def episode_loader(
    dataset: VideoDataset, batch_sampler: Any, shot: int, workers: int, device: torch.device, seed: int = 0
) -> DataLoader:
    """A DataLoader yielding one collated episode per batch from ``batch_sampler``.

    The loader has its own seeded generator, so creating it never draws from the global RNG. On
    the CPU the model's threads make room for the workers (:func:`leave_cores_for_workers`).
    """
    if device.type == "cpu":
        leave_cores_for_workers(workers)
    return DataLoader(
        dataset,
        batch_sampler=batch_sampler,
        collate_fn=functools.partial(collate_episode, shot=shot),
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=device.type == "cuda",
        generator=torch.Generator().manual_seed(seed),
    )


def _unwrapped_worker_error(error: StsamplerError) -> StsamplerError:
    """The error a DataLoader worker raised, with its own message instead of the worker's report.

    PyTorch re-raises a worker's exception as the same type whose message is "Caught <type> in
    DataLoader worker process N. Original Traceback ..."; the original message is what follows the
    last ``<module>.<type>: `` of that traceback.
    """
    text = str(error)
    if not text.startswith(f"Caught {type(error).__name__} in DataLoader worker process"):
        return error
    marker = f"{type(error).__module__}.{type(error).__qualname__}: "
    _, found, message = text.rpartition(marker)
    return type(error)(message.rstrip("\n")) if found else error


def episode_batches(loader: Iterable[dict[str, torch.Tensor]]) -> Iterator[dict[str, torch.Tensor]]:
    """Iterate a loader's collated episodes; a library error from a worker process arrives with the
    message it has without workers (see :func:`_unwrapped_worker_error`)."""
    iterator = iter(loader)
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            return
        except StsamplerError as error:
            unwrapped = _unwrapped_worker_error(error)
            if unwrapped is error:
                raise
            raise unwrapped from None
        yield batch
