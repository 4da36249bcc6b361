"""DDP equivalence on CPU (gloo, 2 processes): 2 ranks x 1 episode == 1 process x 2 episodes."""
from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from stsampler.config import Config, config_from_dict
from stsampler.data.episodes import collate_episode
from stsampler.engine import distributed
from stsampler.engine.builder import build_model
from stsampler.engine.train import build_optimizer, train_step, unwrap
from stsampler.errors import DeviceError

WAY, SHOT, QUERY = 3, 1, 2


def _config() -> Config:
    return config_from_dict({
        "data": {"split_dir": "unused", "num_frames": 6, "crop_size": 16, "resize_short": 16},
        "sampler": {"kind": "uniform", "num_frames": 3},
        "model": {"backbone": "smallcnn", "pretrained": False, "head": "protonet"},
        "train": {"way": WAY, "shot": SHOT, "query": QUERY, "optimizer": "sgd", "lr": 0.5, "momentum": 0.9,
                  "tasks_per_batch": 2, "clip_grad": 1.0},
    })


def _episode(seed: int) -> dict[str, torch.Tensor]:
    """A collated in-memory episode: uint8 frames [WAY*(SHOT+QUERY), 6, 3, 16, 16]."""
    g = torch.Generator().manual_seed(seed)
    classes = torch.randperm(5, generator=g)[:WAY].tolist()
    labels = [c for c in classes for _ in range(SHOT)] + [c for c in classes for _ in range(QUERY)]
    items = [
        {"frames": torch.randint(0, 256, (6, 3, 16, 16), generator=g, dtype=torch.uint8), "label": c,
         "index": i, "frame_indices": torch.arange(6)}
        for i, c in enumerate(labels)
    ]
    return collate_episode(items, shot=SHOT)


def _step(model: torch.nn.Module, episodes: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    cfg = _config()
    optimizer = build_optimizer(unwrap(model), cfg.train)
    return train_step(model, optimizer, episodes, WAY, SHOT, torch.device("cpu"), clip_grad=cfg.train.clip_grad)


def _fresh_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(_config(), num_train_classes=5)


def _worker(rank: int, port: int, out: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank)
    )
    torch.set_num_threads(1)
    device = distributed.init("cpu")
    try:
        assert (distributed.rank(), distributed.world_size(), device.type) == (rank, 2, "cpu")
        model = DistributedDataParallel(_fresh_model())
        stats = _step(model, [_episode(rank)])
        loss = distributed.all_reduce_mean(stats["loss"])
        gathered = distributed.gather_objects(rank)
        if distributed.is_main():
            torch.save({"params": dict(model.module.named_parameters()), "loss": loss, "gathered": gathered}, out)
    finally:
        distributed.cleanup()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_ranks_one_episode_equal_one_process_two_episodes(tmp_path: Path) -> None:
    out = tmp_path / "rank0.pt"
    mp.spawn(_worker, args=(_free_port(), str(out)), nprocs=2, join=True)
    ddp = torch.load(out, weights_only=True)

    model = _fresh_model()
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    stats = _step(model, [_episode(0), _episode(1)])
    assert ddp["gathered"] == [0, 1]
    assert torch.allclose(ddp["loss"], stats["loss"], atol=1e-6)
    moved = 0
    for name, param in model.named_parameters():
        assert torch.allclose(ddp["params"][name], param.detach(), atol=1e-6, rtol=1e-5), name
        moved += int(not torch.equal(before[name], param.detach()))
    assert moved > 0  # the step changed the parameters, so the comparison means something


def test_single_process_helpers_are_no_ops() -> None:
    assert not distributed.is_initialized()
    assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, True)
    x = torch.tensor([1.0, 3.0])
    assert torch.equal(distributed.all_reduce_mean(x), x)
    assert distributed.gather_objects({"a": 1}) == [{"a": 1}]
    distributed.barrier()


@pytest.mark.parametrize("device", ["foo", "cuda", "cuda:7", "mps"])
def test_a_device_this_machine_lacks_is_one_clear_error(device: str) -> None:
    kind = device.split(":")[0]
    backend = getattr(torch, kind, None)
    if backend is not None and hasattr(backend, "is_available") and backend.is_available() and device != "cuda:7":
        pytest.skip(f"this machine has {kind}")
    if device == "cuda:7" and torch.cuda.device_count() > 7:
        pytest.skip("this machine has 8 CUDA devices")
    with pytest.raises(DeviceError, match=rf"train\.device='{device}'") as info:
        distributed.resolve_device(device, "train.device")
    assert "cpu" in str(info.value)


def test_resolve_device_names() -> None:
    assert distributed.resolve_device("cpu") == torch.device("cpu")
    expected = "cuda:0" if torch.cuda.is_available() else "cpu"
    assert distributed.resolve_device("auto") == torch.device(expected)
