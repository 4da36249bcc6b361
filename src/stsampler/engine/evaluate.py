"""Fixed-episode evaluation: mean accuracy +- 95% CI, per-class accuracy, throughput.

:func:`evaluate` scores a model on a list of episodes (also training's validation);
:func:`evaluate_run` evaluates a run directory or checkpoint and writes the report. The pieces that
run an episode on a device are in :mod:`stsampler.engine.runtime`.
"""
from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from stsampler.config import Config, apply_overrides, config_from_dict, config_to_dict
from stsampler.data.dataset import VideoDataset
from stsampler.data.episodes import Episode, FixedEpisodeSampler, load_episodes, sample_episodes, save_episodes
from stsampler.engine import distributed
from stsampler.engine.builder import build_dataset
from stsampler.engine.checkpoint import checkpoint_config, load_checkpoint, load_model, resolve_checkpoint
from stsampler.engine.runtime import autocast, episode_batches, episode_loader, prepare_batch, resolve_amp
from stsampler.engine.substitutions import Substitutions
from stsampler.errors import ConfigError, DatasetError
from stsampler.io import atomic_write_json, check_writable


@dataclass
class EvalResult:
    """What :func:`evaluate` measured.

    Attributes:
        accuracy: mean per-episode query accuracy, in percent.
        ci95: half-width of the 95% confidence interval, 1.96 * std / sqrt(n), in percent.
        per_class: accuracy (percent) of the queries of each class, by dataset class name.
        per_episode: each episode's accuracy in [0, 1], in episode-list order.
        num_episodes: n.
        episodes_per_s, videos_per_s: throughput of the whole evaluation (all ranks together).
        substitutions: videos the dataset replaced by another of their class
            (:class:`~stsampler.engine.substitutions.Substitutions` entries); num_substitutions: their
            total count.
    """

    accuracy: float
    ci95: float
    per_class: dict[str, float]
    per_episode: list[float]
    num_episodes: int
    episodes_per_s: float
    videos_per_s: float
    substitutions: list[dict] = field(default_factory=list)
    num_substitutions: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def make_episodes(dataset: VideoDataset, way: int, shot: int, query: int, num: int, seed: int) -> list[Episode]:
    """``num`` seeded episodes over the dataset's classes (the same list for the same arguments)."""
    return sample_episodes(
        dataset.labels, way, shot, query, num, seed, class_names=dataset.class_names, split=dataset.split
    )


def _summarise(
    per_episode: list[float], per_class_hits: dict[str, list[int]], elapsed: float, videos: int,
    substitutions: Substitutions,
) -> EvalResult:
    n = len(per_episode)
    acc = torch.tensor(per_episode, dtype=torch.float64)
    std = acc.std(unbiased=False).item() if n > 1 else 0.0
    return EvalResult(
        accuracy=100.0 * acc.mean().item(),
        ci95=100.0 * 1.96 * std / math.sqrt(n),
        per_class={name: 100.0 * hits / total for name, (hits, total) in sorted(per_class_hits.items())},
        per_episode=per_episode,
        num_episodes=n,
        episodes_per_s=n / elapsed if elapsed > 0 else float("inf"),
        videos_per_s=videos / elapsed if elapsed > 0 else float("inf"),
        substitutions=substitutions.to_list(),
        num_substitutions=substitutions.total,
    )


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def evaluate(
    model: nn.Module,
    dataset: VideoDataset,
    episodes: Sequence[Episode],
    shot: int,
    device: torch.device | str,
    amp: torch.dtype | None = None,
    workers: int = 0,
    progress: bool = False,
    on_batch: Callable[[dict[str, torch.Tensor], Any], None] | None = None,
) -> EvalResult:
    """Classify the queries of fixed episodes with hard selections, in inference mode.

    Episodes are sharded over ranks (episode i on rank i % world_size) and the results gathered, so
    every rank returns the same :class:`EvalResult`. The same episodes give the same accuracy to
    the last digit. Videos the dataset replaced (unreadable ones) are counted in the result.

    Args:
        model: a :class:`~stsampler.models.recognizer.FewShotRecognizer` (not DDP-wrapped).
        dataset: the split's dataset (``train=False``).
        episodes: the episode list; all of one size.
        shot: K of the episodes.
        device: where the model runs.
        amp: autocast dtype, or None for fp32.
        workers: DataLoader worker processes.
        progress: show a progress bar (rank 0).
        on_batch: called as ``on_batch(batch, output)`` after each episode (batch as collated,
            output the recogniser's), e.g. to score the sampler's picks.
    """
    if not episodes:
        raise DatasetError("no episodes to evaluate")
    device = torch.device(device)
    way = len(episodes[0].classes)
    rank, world = distributed.rank(), distributed.world_size()
    loader = episode_loader(dataset, FixedEpisodeSampler(episodes, rank, world), shot, workers, device)
    hits: list[torch.Tensor] = []
    query_classes: list[torch.Tensor] = []
    substitutions = Substitutions()
    keys = dataset.keys
    bar = tqdm(total=len(loader), desc="eval", unit="ep", disable=not (progress and distributed.is_main()))
    start = time.perf_counter()
    with _eval_mode(model), torch.inference_mode():
        for batch in episode_batches(loader):
            substitutions.record(batch, keys)
            inputs = prepare_batch(batch, device, way, shot)
            with autocast(device, amp):
                output = model(inputs["clips"], inputs["is_support"], inputs["support_labels"], way)
            hits.append(output.logits.argmax(dim=-1) == inputs["query_labels"])
            query_classes.append(batch["class_ids"][way * shot:])
            if on_batch is not None:
                on_batch(batch, output)
            bar.update(1)
    bar.close()
    local_hits = torch.stack(hits).cpu() if hits else torch.zeros(0, 0, dtype=torch.bool)
    elapsed = time.perf_counter() - start
    local = {
        "hits": local_hits,
        "classes": torch.stack(query_classes) if query_classes else torch.zeros(0, 0, dtype=torch.int64),
        "elapsed": elapsed,
        "substitutions": substitutions,
    }
    shards = distributed.gather_objects(local)
    per_episode: list[float] = [0.0] * len(episodes)
    per_class: dict[str, list[int]] = {}
    names = {item.label: item.class_name for item in dataset.items}
    for r, shard in enumerate(shards):
        for j, (row, classes) in enumerate(zip(shard["hits"], shard["classes"], strict=True)):
            per_episode[j * world + r] = row.double().mean().item()
            for hit, class_id in zip(row.tolist(), classes.tolist(), strict=True):
                entry = per_class.setdefault(names[class_id], [0, 0])
                entry[0] += int(hit)
                entry[1] += 1
    videos = sum(len(e.indices) for e in episodes)
    gathered = Substitutions()
    for shard in shards:
        gathered.update(shard["substitutions"])
    return _summarise(per_episode, per_class, max(s["elapsed"] for s in shards), videos, gathered)


def _episode_list(
    dataset: VideoDataset, split: str, way: int, shot: int, query: int, num: int, seed: int,
    episodes_file: str | os.PathLike | None,
) -> list[Episode]:
    """Load the episode file if it exists (checking its size and videos), else draw and save it."""
    if episodes_file is not None and Path(episodes_file).is_file():
        episodes, meta = load_episodes(episodes_file, dataset_keys=dataset.keys)
        wanted = {"way": way, "shot": shot, "query": query}
        differ = {k: (meta.get(k), v) for k, v in wanted.items() if meta.get(k) != v}
        if differ:
            raise DatasetError(
                f"episode file {episodes_file} holds other episodes than asked for "
                f"(file vs asked: {differ}); pass another --episodes-file or matching --way/--shot"
            )
        return episodes
    episodes = make_episodes(dataset, way, shot, query, num, seed)
    if episodes_file is not None and distributed.is_main():
        save_episodes(episodes_file, episodes, {"split": split, "seed": seed}, dataset_keys=dataset.keys)
    return episodes


def eval_task(cfg: Config) -> tuple[int, int]:
    """N and K of the evaluation's episodes: the ``eval`` section's, else the ``train`` section's.

    Validation during training uses them too: it chooses the checkpoint for this task, which may
    differ from the training episodes' (e.g. training at a higher way than the test).
    """
    return cfg.eval.way or cfg.train.way, cfg.eval.shot or cfg.train.shot


def episode_shape(
    cfg: Any, way: int | None, shot: int | None, query: int | None, episodes: int | None
) -> dict[str, int]:
    """N, K, queries per class and episode count of an evaluation: each given value, else the run's
    ``eval.*`` setting, else (way, shot) its ``train.*`` one.

    Raises:
        ConfigError: way < 2, shot < 1, query < 1 or episodes < 1 (naming the flag and the key).
    """
    run_way, run_shot = eval_task(cfg)
    shape = {
        "way": way if way is not None else run_way,
        "shot": shot if shot is not None else run_shot,
        "query": query if query is not None else cfg.eval.query,
        "episodes": episodes if episodes is not None else cfg.eval.episodes,
    }
    for name, least in (("way", 2), ("shot", 1), ("query", 1), ("episodes", 1)):
        if shape[name] < least:
            raise ConfigError(
                f"--{name} (eval.{name}) must be >= {least}, got {shape[name]}: an episode needs at least 2 "
                "classes, 1 support and 1 query video per class"
            )
    return shape


def evaluate_run(
    path: str | os.PathLike,
    split: str = "test",
    episodes: int | None = None,
    way: int | None = None,
    shot: int | None = None,
    query: int | None = None,
    seed: int = 0,
    episodes_file: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    overrides: Sequence[str] = (),
    device: str = "auto",
    workers: int | None = None,
    progress: bool = True,
) -> dict:
    """Evaluate a run directory (its best checkpoint, else last) or a checkpoint file.

    Output paths (``out``, and ``episodes_file`` when it will be written) are checked writable
    before anything is decoded.

    Args:
        path: run directory or ``.pt`` file.
        split: ``train``, ``val`` or ``test``.
        episodes, way, shot, query: number of episodes to draw (ignored when ``episodes_file``
            exists), N, K and queries per class; None takes the run's setting (:func:`episode_shape`).
        seed: episode seed.
        episodes_file: a JSON episode list: read when it exists (so every model sees the same
            tasks), else drawn and written there.
        out: where to write the results JSON (atomically), or None.
        overrides: ``key=value`` config overrides (e.g. ``data.data_root=/data/ucf101``); the
            model / sampler architecture cannot change.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        workers: DataLoader workers (None: ``data.workers``).
        progress: show a progress bar.

    Returns:
        A JSON-ready dict: the :class:`EvalResult` fields plus what was evaluated (way, shot,
        query, and ``num_episodes`` the number of episodes actually scored).

    Raises:
        ConfigError: a bad episode size; OutputError: an output path cannot be written;
        CheckpointError, DatasetError, DeviceError: see the message.
    """
    if out is not None:
        check_writable(out, "--out")
    if episodes_file is not None and not Path(episodes_file).is_file():
        check_writable(episodes_file, "--episodes-file")
    ckpt_path = resolve_checkpoint(path)
    stored = checkpoint_config(load_checkpoint(ckpt_path), str(ckpt_path))
    cfg = config_from_dict(apply_overrides(config_to_dict(stored), overrides), source="overrides")
    shape = episode_shape(cfg, way, shot, query, episodes)
    dev = distributed.init(device, "--device")
    model, cfg = load_model(ckpt_path, dev, config=cfg)
    dataset = build_dataset(cfg, split, train=False)
    episode_list = _episode_list(
        dataset, split, shape["way"], shape["shot"], shape["query"], shape["episodes"], seed, episodes_file
    )
    amp = resolve_amp(cfg.train.amp, dev, cfg.model.backbone)
    result = evaluate(
        model, dataset, episode_list, shape["shot"], dev, amp,
        workers=cfg.data.workers if workers is None else workers, progress=progress,
    )
    report = {
        "checkpoint": str(ckpt_path),
        "name": cfg.name,
        "split": split,
        "way": shape["way"],
        "shot": shape["shot"],
        "query": shape["query"],
        "seed": seed,
        "episodes_file": str(episodes_file) if episodes_file is not None else None,
        "device": str(dev),
        "amp": str(amp).removeprefix("torch.") if amp is not None else "none",
        **result.to_dict(),
    }
    if out is not None and distributed.is_main():
        atomic_write_json(out, report)
    return report
