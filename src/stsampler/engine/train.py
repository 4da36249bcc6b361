"""Episodic training: gradient accumulation over episodes, DDP, AMP, validation, checkpoints, resume.

One optimiser step consumes ``train.tasks_per_batch`` episodes over all ranks: each of W ranks
runs ``tasks_per_batch / W`` episodes, accumulating gradients (DDP all-reduces only on the last),
each episode's loss scaled so the step's gradient is the mean over all its episodes. Episode ``g``
of the run is the same task whatever W (see :class:`~stsampler.data.episodes.EpisodeSampler`).

The run directory holds ``config.yaml`` (resolved; written once, never replaced by a resume),
``train.log``, ``results.json``, ``checkpoints/{last,best}.pt`` and ``tensorboard/``. ``best.pt`` is
chosen on the val split, in episodes of the evaluation's task (``eval.way``/``eval.shot``, else the
training's), among the validations after the selector warm-up
(``sampler.selector_warmup``): until then the temporal selector has not been trained. A resume must
use the run's recipe (:func:`~stsampler.engine.checkpoint.recipe_diff`). Videos the data layer
replaced (unreadable ones) are logged when first met and listed in ``results.json`` and checkpoints.
"""
from __future__ import annotations

import contextlib
import logging
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from stsampler.config import Config, TrainConfig, config_to_dict, save_config
from stsampler.data.episodes import EpisodeSampler
from stsampler.engine import distributed
from stsampler.engine.averaging import WeightAverage
from stsampler.engine.builder import build_dataset, build_model, resolve_split
from stsampler.engine.checkpoint import (
    BEST,
    CHECKPOINT_DIR,
    LAST,
    capture_rng,
    checkpoint_config,
    load_checkpoint,
    module_generators,
    recipe_diff,
    restore_rng,
    save_checkpoint,
)
from stsampler.engine.evaluate import eval_task, evaluate, make_episodes
from stsampler.engine.metrics import event_scorer, synthetic_metadata
from stsampler.engine.runtime import autocast, episode_batches, episode_loader, prepare_batch, resolve_amp
from stsampler.engine.substitutions import Substitutions, pairs_text
from stsampler.errors import CheckpointError, ConfigError
from stsampler.io import atomic_write_json, check_writable
from stsampler.models.recognizer import FewShotRecognizer
from stsampler.ops.topk import sigma_at
from stsampler.samplers.learned import STSampler

log = logging.getLogger(__name__)

#: The statistics of every training step, logged as running means: the total loss, its parts
#: (:meth:`FewShotRecognizer.loss`) and the query accuracy.
STEP_STATS = ("loss", "ce", "aux", "scan", "accuracy")


def unwrap(model: nn.Module) -> FewShotRecognizer:
    """The recogniser inside a DDP wrapper (or the model itself)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Sequence[dict[str, torch.Tensor]],
    way: int,
    shot: int,
    device: torch.device,
    amp: torch.dtype | None = None,
    scaler: torch.amp.GradScaler | None = None,
    clip_grad: float | None = None,
) -> dict[str, torch.Tensor]:
    """One optimiser step over this rank's episodes (gradient accumulation; DDP syncs on the last).

    Args:
        model: the recogniser, possibly DDP-wrapped (gradients then averaged over ranks).
        optimizer: its optimiser.
        batches: this rank's collated episodes of the step (``collate_episode`` output each).
        way, shot: N and K of the episodes.
        device: where the model is.
        amp: autocast dtype or None.
        scaler: gradient scaler (fp16) or None.
        clip_grad: max global gradient norm, or None.

    Returns:
        Detached device scalars, means over this rank's episodes: one per name of
        :data:`STEP_STATS`. Reading them synchronises with the device, so callers do so only to log.
    """
    core = unwrap(model)
    optimizer.zero_grad(set_to_none=True)
    sums = torch.zeros(len(STEP_STATS), device=device)
    for j, batch in enumerate(batches):
        inputs = prepare_batch(batch, device, way, shot)
        last = j == len(batches) - 1
        sync = contextlib.nullcontext() if last or not isinstance(model, DistributedDataParallel) else model.no_sync()
        with sync:
            with autocast(device, amp):
                output = model(inputs["clips"], inputs["is_support"], inputs["support_labels"], way)
                loss, parts = core.loss(output, inputs["query_labels"], inputs["class_ids"])
            scaled = loss / len(batches)
            (scaler.scale(scaled) if scaler is not None else scaled).backward()
        accuracy = (output.logits.argmax(dim=-1) == inputs["query_labels"]).float().mean()
        parts_now = {"loss": loss, **parts, "accuracy": accuracy}
        sums += torch.stack([parts_now[name].detach().float() for name in STEP_STATS])
    if scaler is not None:
        scaler.unscale_(optimizer)
    if clip_grad is not None:
        nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    means = sums / len(batches)
    return dict(zip(STEP_STATS, means, strict=True))


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """SGD (with momentum) or AdamW over the trainable parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Learning-rate multiplier for optimiser step ``step`` (0-based), from the episode count.

    Linear warm-up over ``warmup`` episodes, then ``constant``, ``cosine`` (to 0 at
    ``episodes``) or ``step`` (times ``step_gamma`` every ``step_every`` episodes).
    """
    done = step * cfg.tasks_per_batch
    warm = min(1.0, (done + cfg.tasks_per_batch) / cfg.warmup) if cfg.warmup > 0 else 1.0
    if cfg.schedule == "cosine":
        return warm * 0.5 * (1.0 + math.cos(math.pi * min(done, cfg.episodes) / cfg.episodes))
    if cfg.schedule == "step":
        return warm * cfg.step_gamma ** (done // cfg.step_every)
    return warm


def episode_rounding_note(cfg: TrainConfig) -> str | None:
    """A note when ``episodes`` is not a multiple of ``tasks_per_batch`` (training rounds it up), else None."""
    steps = math.ceil(cfg.episodes / cfg.tasks_per_batch)
    if steps * cfg.tasks_per_batch == cfg.episodes:
        return None
    return (
        f"note: train.episodes={cfg.episodes} is not a multiple of train.tasks_per_batch={cfg.tasks_per_batch}: "
        f"training runs {steps} step(s), {steps * cfg.tasks_per_batch} episodes"
    )


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _set_sampler_schedules(model: FewShotRecognizer, cfg: Config, episodes_done: int) -> None:
    """Apply the perturbed top-k's sigma schedule and the selector warm-up (pure functions of the episode count)."""
    if isinstance(model.sampler, STSampler):
        s = cfg.sampler
        model.sampler.sigma = sigma_at(episodes_done, s.sigma0, s.sigma_decay, s.sigma_every, s.sigma_min)
        model.sampler.explore = episodes_done < s.selector_warmup


def _has_selector(model: FewShotRecognizer) -> bool:
    """Whether the model's sampler has a temporal selector (the part the selector warm-up bypasses)."""
    return isinstance(model.sampler, STSampler) and model.sampler.selector is not None


def _crossed(before: int, after: int, every: int) -> bool:
    return after // every > before // every


def _attach_log_file(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logging.getLogger("stsampler").addHandler(handler)
    logging.getLogger("stsampler").setLevel(logging.INFO)
    return handler


@dataclass
class _Session:
    """What one call of :meth:`_Trainer.run` keeps between its steps.

    Attributes:
        batches: the collated training episodes, in order (:func:`~stsampler.engine.runtime.episode_batches`).
        bar: the progress bar, in episodes.
        writer: the TensorBoard ``SummaryWriter`` (rank 0; None on the other ranks).
        start_time, start_episodes: the clock and the episode count when the call began.
        running: float ``[len(STEP_STATS)]`` on the device, the sums of :data:`STEP_STATS` since the last log line.
        since_log: the steps those sums cover.
        logged: the last logged statistics (empty before the first log line).
    """

    batches: Iterator[dict[str, torch.Tensor]]
    bar: tqdm
    writer: Any
    start_time: float
    start_episodes: int
    running: torch.Tensor
    since_log: int = 0
    logged: dict[str, float] = field(default_factory=dict)


class _Trainer:
    """State and steps of one training run (one per process)."""

    def __init__(self, cfg: Config, run_dir: Path, resume: bool, progress: bool) -> None:
        self.cfg = cfg
        self.run_dir = run_dir
        self.progress = progress
        tcfg = cfg.train
        self.device = distributed.init(tcfg.device, "train.device")
        self.rank, self.world = distributed.rank(), distributed.world_size()
        if tcfg.tasks_per_batch % self.world:
            raise ConfigError(
                f"train.tasks_per_batch ({tcfg.tasks_per_batch}) must be a multiple of the number of "
                f"processes ({self.world})"
            )
        self.per_rank = tcfg.tasks_per_batch // self.world
        self.total_steps = math.ceil(tcfg.episodes / tcfg.tasks_per_batch)
        self.amp = resolve_amp(tcfg.amp, self.device, cfg.model.backbone)
        self.state = self._resume_state(resume)
        # Every check that can fail on bad input runs before the model is built.
        train_split = resolve_split(cfg, "train")
        self._check_resumed_classes(len(train_split.classes))
        self.train_set = build_dataset(cfg, "train", train=True, split_data=train_split)
        self.train_keys = self.train_set.keys
        self.val_set = build_dataset(cfg, "val", train=False) if tcfg.val_episodes > 0 else None
        val_way, self.val_shot = eval_task(cfg)
        self.val_episodes = (
            make_episodes(self.val_set, val_way, self.val_shot, cfg.eval.query, tcfg.val_episodes, cfg.eval.seed)
            if self.val_set is not None
            else []
        )
        self.val_metadata = synthetic_metadata(cfg) if self.val_set is not None else None
        self.episodes_done = int(self.state["episodes"]) if self.state else 0
        self.step = int(self.state["step"]) if self.state else 0
        self.sampler = EpisodeSampler(
            self.train_set.labels, tcfg.way, tcfg.shot, tcfg.query,
            num_episodes=self.total_steps * self.per_rank, seed=tcfg.seed, rank=self.rank,
            world_size=self.world, start=self.episodes_done // self.world,
            class_names=self.train_set.class_names, split=self.train_set.split,
        )
        seed_everything(tcfg.seed)
        self.model = build_model(cfg, num_train_classes=len(train_split.classes)).to(self.device)
        if tcfg.channels_last and self.device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
        if isinstance(self.model.sampler, STSampler):
            self.model.sampler.generator = torch.Generator(self.device)
        for i, generator in enumerate(module_generators(self.model).values()):
            generator.manual_seed(tcfg.seed + 7919 * self.rank + i)  # each rank draws its own noise
        seed_everything(tcfg.seed + self.rank)
        self.optimizer = build_optimizer(self.model, tcfg)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: lr_factor(s, tcfg))
        self.scaler = torch.amp.GradScaler("cuda") if self.amp == torch.float16 else None
        self.best = self.state.get("best") if self.state else None
        self.history: list[dict] = list(self.state.get("history", [])) if self.state else []
        self.train_history: list[dict] = list(self.state.get("train_history", [])) if self.state else []
        # Checkpoints hold the training substitutions of all ranks together: rank 0 takes them back.
        saved = self.state.get("substitutions", {}) if self.state else {}
        self.substitutions = {
            "train": Substitutions(saved.get("train", ()) if self.rank == 0 else ()),
            "val": Substitutions(saved.get("val", ())),
        }
        if self.state:
            self._load_training_state()
        self.average = (
            WeightAverage(self.model, tcfg.ema_decay, self.state["model"] if self.state else None)
            if tcfg.ema_decay is not None
            else None
        )
        self.net: nn.Module = self.model
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            # During the selector warm-up the selector (and its generated w2) gets no gradient.
            warmup = _has_selector(self.model) and self.cfg.sampler.selector_warmup > 0
            self.net = DistributedDataParallel(self.model, device_ids=ids, find_unused_parameters=warmup)

    def _resume_state(self, resume: bool) -> dict | None:
        last = self.run_dir / CHECKPOINT_DIR / LAST
        if not resume:
            if last.exists():
                raise CheckpointError(
                    f"{self.run_dir} already holds a run ({last}); resume it with --resume or choose "
                    "another run directory"
                )
            return None
        state = load_checkpoint(last)
        diffs = recipe_diff(config_to_dict(checkpoint_config(state, str(last))), config_to_dict(self.cfg))
        if diffs:
            raise CheckpointError(
                f"cannot resume {last} with another recipe ({'; '.join(diffs)}): drop these overrides to "
                "continue the run, or train the new recipe into another --run-dir"
            )
        return state

    def _check_resumed_classes(self, num_classes: int) -> None:
        """Refuse to resume when the training split's class count changed (the auxiliary classifier's size)."""
        if self.state is None:
            return
        saved = int(self.state["num_train_classes"])
        if saved != num_classes:
            raise CheckpointError(
                f"cannot resume {self.run_dir / CHECKPOINT_DIR / LAST}: it was trained on {saved} training "
                f"classes but the train split list now has {num_classes}; restore the split list the run "
                "used, or train into another --run-dir"
            )

    def _load_training_state(self) -> None:
        state = self.state
        self.model.load_state_dict(state["training_weights" if self.cfg.train.ema_decay is not None else "model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])

    def _checkpoint(self, name: str, full: bool) -> None:
        substitutions = self._gathered_substitutions()  # collective: every rank calls _checkpoint
        if not distributed.is_main():
            return
        state = {
            "config": config_to_dict(self.cfg),
            "num_train_classes": self.model.aux_classifier.out_features,
            "model": self.average.state_dict() if self.average is not None else self.model.state_dict(),
            "episodes": self.episodes_done,
            "step": self.step,
            "best": self.best,
            "history": self.history,
            "train_history": self.train_history,
            "substitutions": substitutions,
        }
        if full:
            state.update(
                optimizer=self.optimizer.state_dict(),
                scheduler=self.scheduler.state_dict(),
                scaler=self.scaler.state_dict() if self.scaler is not None else {},
                rng=capture_rng(self.model),
            )
            if self.average is not None:
                state["training_weights"] = self.model.state_dict()
        save_checkpoint(self.run_dir / CHECKPOINT_DIR / name, state)

    def _selector_untrained(self) -> bool:
        """Whether the temporal selector has not had a training step yet (warm-up not over)."""
        return _has_selector(self.model) and self.episodes_done <= self.cfg.sampler.selector_warmup

    def _validate(self) -> dict:
        """Test on the validation episodes; on synthetic data (event metadata) also the sampler's temporal hit
        rate and event magnification, so a run's log shows whether and when its selector found the events."""
        scorer = event_scorer(self.cfg, self.val_set, self.val_metadata)
        with self.average.applied(self.model) if self.average is not None else contextlib.nullcontext():
            distributed.broadcast_buffers(self.model)  # the weights rank 0 saves, on every rank
            result = evaluate(
                self.model, self.val_set, self.val_episodes, self.val_shot, self.device, self.amp,
                workers=self.cfg.data.workers, progress=False, on_batch=scorer,
            )
        entry = {"episodes": self.episodes_done, "accuracy": result.accuracy, "ci95": result.ci95}
        events = ""
        if scorer is not None:
            entry |= {"hit_rate": scorer.hit_rate, "magnification": scorer.magnification}
            events = f" (temporal hit rate {scorer.hit_rate:.1f}%, event magnification {scorer.magnification:.2f}x)"
        if result.num_substitutions:
            self.substitutions["val"].update(Substitutions(result.substitutions))
            log.warning("val after %d episodes: %d unreadable video(s) replaced: %s", self.episodes_done,
                        result.num_substitutions, pairs_text(result.substitutions))
        self.history.append(entry)
        log.info("val after %d episodes: %.2f +- %.2f%%%s", self.episodes_done, result.accuracy, result.ci95, events)
        if self._selector_untrained():
            log.info("not a best-checkpoint candidate: the selector is still in its warm-up")
        elif self.best is None or result.accuracy > self.best["accuracy"]:
            self.best = entry
            self._checkpoint(BEST, full=False)
        return entry

    def _record_substitutions(self, batches: Sequence[dict[str, torch.Tensor]]) -> None:
        """Count the training videos replaced in this step's episodes; log each new one (this rank)."""
        for batch in batches:
            for requested, replacement in self.substitutions["train"].record(batch, self.train_keys):
                log.warning("train: unreadable video %s replaced by %s (another video of its class)",
                            requested, replacement)

    def _gathered_substitutions(self) -> dict[str, list[dict]]:
        """Every rank's training substitutions added up, and the validation ones (the same on every rank)."""
        train_subs = Substitutions()
        for shard in distributed.gather_objects(self.substitutions["train"]):
            train_subs.update(shard)
        return {"train": train_subs.to_list(), "val": self.substitutions["val"].to_list()}

    def run(self, max_steps: int | None) -> dict:
        """Train to the last step, or for ``max_steps`` steps of this call (then save ``last.pt`` to
        resume from); write ``results.json`` and return the results."""
        session = self._open_session()
        first_step = self.step
        while self.step < self.total_steps and (max_steps is None or self.step - first_step < max_steps):
            before = self.episodes_done
            self._optimizer_step(session)
            self._log_if_due(session)
            self._validate_if_due(before, session)
            self._checkpoint_if_due(before)
        stopped = self.step < self.total_steps
        if stopped:
            self._checkpoint(LAST, full=True)
        return self._finish(session, stopped)

    def _open_session(self) -> _Session:
        """Start this call's TensorBoard writer (rank 0), episode loader and progress bar; restore
        the random state of a resumed run and put the model in training mode."""
        main = distributed.is_main()
        writer = None
        if main:
            from torch.utils.tensorboard import SummaryWriter  # slow import, rank 0 only

            writer = SummaryWriter(str(self.run_dir / "tensorboard"), purge_step=self.step)
        tcfg = self.cfg.train
        loader = episode_loader(self.train_set, self.sampler, tcfg.shot, self.cfg.data.workers, self.device, tcfg.seed)
        if self.state:
            restore_rng(self.state["rng"], self.model)
        self.model.train()
        bar = tqdm(
            total=self.total_steps * tcfg.tasks_per_batch, initial=self.episodes_done, unit="ep",
            desc=self.cfg.name, disable=not (self.progress and main),
        )
        return _Session(
            batches=episode_batches(loader), bar=bar, writer=writer, start_time=time.perf_counter(),
            start_episodes=self.episodes_done, running=torch.zeros(len(STEP_STATS), device=self.device),
        )

    def _optimizer_step(self, session: _Session) -> None:
        """One optimiser step over this rank's next episodes; its statistics join ``session.running``."""
        tcfg = self.cfg.train
        _set_sampler_schedules(self.model, self.cfg, self.episodes_done)
        batches = [next(session.batches) for _ in range(self.per_rank)]
        self._record_substitutions(batches)
        stats = train_step(
            self.net, self.optimizer, batches, tcfg.way, tcfg.shot, self.device, self.amp, self.scaler,
            tcfg.clip_grad,
        )
        self.scheduler.step()
        if self.average is not None:
            self.average.update(self.model)
        self.step += 1
        self.episodes_done += tcfg.tasks_per_batch
        session.running += torch.stack([stats[name] for name in STEP_STATS])
        session.since_log += 1
        session.bar.update(tcfg.tasks_per_batch)

    def _log_if_due(self, session: _Session) -> None:
        """Every ``train.log_every`` steps and after the last: the statistics since the previous log
        line, averaged over steps and ranks, go to the history, the log, the bar and TensorBoard."""
        if self.step % self.cfg.train.log_every and self.step != self.total_steps:
            return
        means = distributed.all_reduce_mean(session.running / session.since_log).tolist()
        logged = dict(zip(STEP_STATS, means, strict=True))
        logged["lr"] = self.optimizer.param_groups[0]["lr"]
        if isinstance(self.model.sampler, STSampler):
            logged["sigma"] = self.model.sampler.sigma
        logged["episodes_per_s"] = (self.episodes_done - session.start_episodes) / (
            time.perf_counter() - session.start_time
        )
        session.running.zero_()
        session.since_log = 0
        session.logged = logged
        self.train_history.append({"episodes": self.episodes_done, **logged})
        if distributed.is_main():
            session.bar.set_postfix(loss=f"{logged['loss']:.3f}", acc=f"{logged['accuracy']:.3f}")
            log.info("step %d episodes %d %s", self.step, self.episodes_done,
                     " ".join(f"{k}={v:.4g}" for k, v in logged.items()))
            for key, value in logged.items():
                session.writer.add_scalar(f"train/{key}", value, self.episodes_done)

    def _validate_if_due(self, before: int, session: _Session) -> None:
        """Validate when the step crossed a multiple of ``train.val_every`` episodes (``before``: the
        count before it) or was the last, then return the model to training mode."""
        due = _crossed(before, self.episodes_done, self.cfg.train.val_every) or self.step == self.total_steps
        if not (self.val_episodes and due):
            return
        entry = self._validate()
        self.model.train()
        if session.writer is not None:
            for name in ("accuracy", "hit_rate", "magnification"):
                if name in entry:
                    session.writer.add_scalar(f"val/{name}", entry[name], self.episodes_done)

    def _checkpoint_if_due(self, before: int) -> None:
        """Save ``last.pt`` when the step crossed a multiple of ``train.ckpt_every`` episodes or was the last."""
        if _crossed(before, self.episodes_done, self.cfg.train.ckpt_every) or self.step == self.total_steps:
            self._checkpoint(LAST, full=True)

    def _finish(self, session: _Session, stopped: bool) -> dict:
        """Close the bar and the writer; the run's results, written to ``results.json`` by rank 0."""
        session.bar.close()
        if session.writer is not None:
            session.writer.close()
        elapsed = time.perf_counter() - session.start_time
        substitutions = self._gathered_substitutions()
        results = {
            "name": self.cfg.name,
            "status": "stopped" if stopped else "finished",
            "episodes": self.episodes_done,
            "steps": self.step,
            "world_size": self.world,
            "device": str(self.device),
            "amp": str(self.amp).removeprefix("torch.") if self.amp is not None else "none",
            "threads": torch.get_num_threads(),
            "train": session.logged,
            "train_history": self.train_history,
            "val": self.history,
            "best": self.best,
            "substitutions": substitutions,
            "num_substitutions": sum(e["count"] for entries in substitutions.values() for e in entries),
            "elapsed_s": elapsed,
            "episodes_per_s": (self.episodes_done - session.start_episodes) / elapsed if elapsed > 0 else 0.0,
        }
        if distributed.is_main():
            atomic_write_json(self.run_dir / "results.json", results)
        distributed.barrier()
        return results


def train(
    cfg: Config, run_dir: str | Path, resume: bool = False, progress: bool = True, max_steps: int | None = None
) -> dict:
    """Train a recogniser episodically and return the run's results (also in ``run_dir/results.json``).

    Under ``torchrun`` (``WORLD_SIZE > 1``) the process group is started here and each rank trains
    on its own episodes.

    Args:
        cfg: the resolved config.
        run_dir: the run directory (created).
        resume: continue from ``run_dir/checkpoints/last.pt`` (same config architecture required).
        progress: show a progress bar (rank 0).
        max_steps: stop after this many optimiser steps in this call, writing ``last.pt`` (as a
            killed run would have); ``resume=True`` continues it. None: run to the end.

    Raises:
        ConfigError, DatasetError, CheckpointError, DeviceError, OutputError: bad input, before any
            training starts.
    """
    run_dir = Path(run_dir)
    check_writable(run_dir, "train --run-dir", folder=True)
    initialised_here = not distributed.is_initialized()
    handler = None
    try:
        trainer = _Trainer(cfg, run_dir, resume, progress)
        if distributed.is_main():
            run_dir.mkdir(parents=True, exist_ok=True)
            if not (resume and (run_dir / "config.yaml").is_file()):
                save_config(cfg, run_dir / "config.yaml")
            handler = _attach_log_file(run_dir / "train.log")
            log.info("%s %s: %d steps of %d episodes on %s x%d, amp=%s", "resuming" if resume else "training",
                     cfg.name, trainer.total_steps, cfg.train.tasks_per_batch, trainer.device, trainer.world,
                     trainer.amp)
            note = episode_rounding_note(cfg.train)
            if note:
                log.info(note)
        return trainer.run(max_steps)
    finally:
        if handler is not None:
            logging.getLogger("stsampler").removeHandler(handler)
            handler.close()
        if initialised_here:
            distributed.cleanup()
