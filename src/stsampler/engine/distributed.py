"""torchrun / DistributedDataParallel helpers; every function is a no-op in a single process.

``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``;
:func:`init` reads them and starts the process group (NCCL on CUDA, gloo on CPU).
"""
from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist

from stsampler.errors import DeviceError


def env_world_size() -> int:
    """``WORLD_SIZE`` from the environment (1 when not launched by torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def resolve_device(device: str | torch.device = "auto", what: str = "device") -> torch.device:
    """The ``torch.device`` that ``device`` names on this machine, checked to exist.

    Args:
        device: ``auto`` (``cuda:LOCAL_RANK`` when CUDA is available, else CPU), ``cpu``, ``cuda``
            (``cuda:LOCAL_RANK``), an explicit ``cuda:N``, or another torch device type.
        what: how the user set it (``train.device``, ``--device``), for the message.

    Raises:
        DeviceError: not a device name, or no such device here.
    """
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    name = str(device)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        name = f"cuda:{local_rank}"
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"{what}={device!r} is not a device name; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cpu":
        return dev
    backend = getattr(torch, dev.type, None)
    available = backend is not None and hasattr(backend, "is_available") and backend.is_available()
    if not available:
        raise DeviceError(f"{what}={device!r}: this machine has no {dev.type} device; use {what}=cpu (or auto)")
    count = backend.device_count() if hasattr(backend, "device_count") else 1
    if dev.index is not None and dev.index >= count:
        raise DeviceError(f"{what}={device!r}: this machine has {count} {dev.type} device(s), numbered from 0")
    return dev


def init(device: str = "auto", what: str = "device") -> torch.device:
    """Start the process group when ``WORLD_SIZE > 1`` and return this rank's device
    (:func:`resolve_device`; ``what`` names the setting in its errors)."""
    dev = resolve_device(device, what)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if env_world_size() > 1 and not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, device_id=dev if dev.type == "cuda" else None)
    return dev


def is_initialized() -> bool:
    """Whether a process group is running."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's global rank (0 without a process group)."""
    return dist.get_rank() if is_initialized() else 0


def world_size() -> int:
    """Number of processes (1 without a process group)."""
    return dist.get_world_size() if is_initialized() else 1


def is_main() -> bool:
    """True on rank 0: the rank that logs and writes files."""
    return rank() == 0


def barrier() -> None:
    """Wait for every rank."""
    if is_initialized():
        dist.barrier()


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """The element-wise mean of ``tensor`` over ranks (a new tensor; the input is untouched)."""
    if not is_initialized():
        return tensor.clone()
    out = tensor.clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / world_size()


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's picklable ``obj``, in rank order, on every rank (``[obj]`` in one process)."""
    if not is_initialized():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s picklable ``obj`` on every rank."""
    if not is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def broadcast_buffers(module: torch.nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s buffers (e.g. batch-norm statistics) into every rank's ``module``."""
    if is_initialized():
        for buffer in module.buffers():
            dist.broadcast(buffer, src=src)


def cleanup() -> None:
    """Destroy the process group if one is running."""
    if is_initialized():
        dist.destroy_process_group()
