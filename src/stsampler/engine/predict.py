"""Few-shot prediction on a user's own videos: label queries against a folder of examples.

The support folder holds one sub-folder per action with 1..K example videos (files or frame
folders)::

    support/
      jump/  a.mp4  b.mp4
      wave/  c.mp4  frames_of_d/00001.jpg ...

:class:`Predictor` embeds the support videos once (and caches the result, in memory and on disk),
then labels any number of query videos. Queries are batched but never affect each other: the
sampler adapts to the support set only, and every other operation is per video.

Inference path: what is decoded depends on the source, as measured in
``benchmarks/results/predict_latency.md``.

* Video files: H.264 and its kin decode every frame up to the last one requested whatever the
  output size, so a second pass costs nearly as much as the first. The M dense frames are decoded
  once with the test transform and sampled exactly as in evaluation (the scanner makes its own
  low-resolution copy); only the T selected frames go through the backbone.
* Frame folders (learned sampler): a JPEG decodes at 1/2, 1/4 or 1/8 scale for little cost, and
  each frame is read on its own. So the M frames are read at the scanner's resolution,
  ``STSampler.plan`` scans, adapts to the cached support task and selects, then only the T
  selected frames are read at full resolution and ``STSampler.apply`` amplifies them.

Training-free samplers always take the first path.
"""
from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from stsampler.data.folders import collect_queries, scan_support_dir
from stsampler.data.indices import segment_indices
from stsampler.data.transforms import ClipTransform, normalize
from stsampler.data.video import probe_video, read_frames
from stsampler.engine.checkpoint import load_model
from stsampler.engine.distributed import resolve_device
from stsampler.engine.runtime import autocast, resolve_amp
from stsampler.errors import DatasetError, StsamplerError
from stsampler.io import atomic_torch_save, atomic_write_json, atomic_write_text, check_writable
from stsampler.models.recognizer import FewShotRecognizer
from stsampler.samplers.learned import STSampler
from stsampler.samplers.task_learner import TaskParams

__all__ = ["PREDICTION_SUFFIXES", "Prediction", "Predictor", "write_predictions"]

log = logging.getLogger(__name__)

_CACHE_VERSION = 1
PREDICTION_SUFFIXES = (".json", ".csv")
"""The file extensions :func:`write_predictions` knows."""
_CACHE_PREFIX = ".stsampler-support-"


@dataclass(frozen=True)
class Prediction:
    """The label of one query video.

    Attributes:
        path: the query video.
        label: the most probable class (a support sub-folder name).
        probabilities: class -> softmax probability, in support class order.
        frame_indices: the video frame numbers of the T frames the sampler selected.
    """

    path: Path
    label: str
    probabilities: dict[str, float]
    frame_indices: list[int]

    def as_dict(self) -> dict:
        """A JSON-ready dict."""
        return {
            "path": str(self.path),
            "label": self.label,
            "probabilities": self.probabilities,
            "frame_indices": self.frame_indices,
        }


def write_predictions(predictions: Sequence[Prediction], path: str | os.PathLike) -> Path:
    """Write predictions as JSON (a list of objects) or CSV (one row per query), by extension.

    CSV columns: ``path, label, p_<class>... , frame_indices`` (frame numbers space-separated).
    """
    path = check_writable(path, "predictions file", suffixes=PREDICTION_SUFFIXES)
    if path.suffix.lower() == ".json":
        return atomic_write_json(path, [p.as_dict() for p in predictions])
    classes = list(predictions[0].probabilities) if predictions else []
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["path", "label", *(f"p_{c}" for c in classes), "frame_indices"])
    for p in predictions:
        writer.writerow(
            [
                str(p.path),
                p.label,
                *(f"{p.probabilities[c]:.6f}" for c in classes),
                " ".join(map(str, p.frame_indices)),
            ]
        )
    return atomic_write_text(path, buffer.getvalue())


@dataclass(frozen=True)
class _Support:
    """Cached support set: class names, embeddings ``[S, T, D']``, labels ``[S]``, task parameters."""

    classes: list[str]
    embeddings: torch.Tensor
    labels: torch.Tensor
    task: TaskParams | None


class Predictor:
    """Labels query videos against a folder of example videos with a trained recogniser.

    Args:
        model: the trained recogniser (put in evaluation mode on ``device``).
        num_dense: M, dense frames per video (``config.data.num_frames``).
        crop_size, resize_short: the test transform (``config.data``).
        device: where the model runs.
        batch_size: queries (and support videos) decoded and embedded together.
        cache_dir: where the support embedding cache goes; None puts it in the support folder
            (falling back to no disk cache when that folder is read-only).
        amp: autocast dtype of the model's computation (e.g. ``torch.bfloat16``), None for fp32.
    """

    def __init__(
        self,
        model: FewShotRecognizer,
        num_dense: int,
        crop_size: int,
        resize_short: int,
        device: str | torch.device = "cpu",
        batch_size: int = 8,
        cache_dir: str | os.PathLike | None = None,
        amp: torch.dtype | None = None,
    ) -> None:
        self.device = torch.device(device)
        self.amp = amp
        self.model = model.to(self.device).eval()
        self.num_dense = num_dense
        self.batch_size = batch_size
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.transform = ClipTransform(crop_size=crop_size, resize_short=resize_short, train=False)
        sampler = self.model.sampler
        self.learned = isinstance(sampler, STSampler)
        self.scan_transform: ClipTransform | None = None
        if self.learned:
            # the same field of view as the full-resolution test crop, at the scanner's size
            scan_size = sampler.scanner.scan_size
            scan_short = max(scan_size, round(scan_size * resize_short / crop_size))
            self.scan_transform = ClipTransform(crop_size=scan_size, resize_short=scan_short, train=False)
        self.support: _Support | None = None
        self._fingerprint: str | None = None

    @classmethod
    def from_checkpoint(
        cls, path: str | os.PathLike, device: str | torch.device = "cpu", amp: str | None = None, **kwargs
    ) -> Predictor:
        """Load a run directory or checkpoint file (:func:`stsampler.engine.checkpoint.load_model`).

        ``amp`` (``"auto"``, ``"bf16"``, ``"fp16"``, ``"none"``) defaults to the run's ``train.amp``, so
        predictions are computed as in evaluation; other keywords go to the constructor.

        Raises:
            DeviceError: ``device`` does not exist here. CheckpointError: see :func:`load_model`.
        """
        device = resolve_device(device)
        model, config = load_model(path, device=device)
        dtype = resolve_amp(amp or config.train.amp, device, config.model.backbone)
        data = config.data
        return cls(model, data.num_frames, data.crop_size, data.resize_short, device, amp=dtype, **kwargs)

    # ---------------------------------------------------------------- decoding

    def dense_frame_numbers(self, path: Path) -> torch.Tensor:
        """Video frame numbers of the M dense frames (segment centres), int64 ``[M]``."""
        return segment_indices(probe_video(path).num_frames, self.num_dense)

    def decode(self, path: Path, frame_numbers: torch.Tensor, low_res: bool = False) -> torch.Tensor:
        """Frames ``frame_numbers [N]`` of a video after the test transform, uint8 ``[N, 3, S, S]``.

        ``low_res`` decodes at the scanner's resolution (S = scan size) instead of the crop size.
        """
        transform = self.scan_transform if low_res else self.transform
        return transform(read_frames(path, frame_numbers, size=transform.resize_short), None)

    def _load(self, paths: Sequence[Path], low_res: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Dense frame numbers ``[B, M]`` and normalised dense clips ``[B, M, 3, S, S]`` on the device."""
        numbers = torch.stack([self.dense_frame_numbers(p) for p in paths])
        clips = torch.stack([self.decode(p, n, low_res) for p, n in zip(paths, numbers, strict=True)])
        return numbers, normalize(clips.to(self.device))

    # ---------------------------------------------------------------- embedding

    def _task(self, paths: Sequence[Path]) -> TaskParams | None:
        """Task parameters adapted to the support videos ``paths`` (None if not task-adaptive)."""
        sampler = self.model.sampler
        if not self.learned or sampler.task_learner is None:
            return None
        with autocast(self.device, self.amp):
            features = [sampler.scan(self._load([p], self._two_pass(p))[1])[1] for p in paths]
            return sampler.task_params(torch.cat(features))

    def _two_pass(self, path: Path) -> bool:
        """Whether ``path`` is scanned at low resolution first (a frame folder, learned sampler)."""
        return self.learned and path.is_dir()

    def _sample_dense(
        self, paths: Sequence[Path], flags: torch.Tensor, task: TaskParams | None
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Decode all M frames at full resolution and sample as in evaluation.

        Returns:
            Sampled frames ``[B, T, 3, H, W]``, scan feature g_X ``[B, Dg]`` (or None) and the
            video frame numbers of the selected frames ``[B, T]``.
        """
        numbers, clips = self._load(paths, low_res=False)
        with autocast(self.device, self.amp):
            if self.learned:
                output = self.model.sampler(clips, flags, task=task)
            else:
                output = self.model.sampler(clips, flags)
        return output.frames, output.video_feature, numbers.gather(1, output.indices.cpu())

    def _sample_two_pass(
        self, paths: Sequence[Path], flags: torch.Tensor, task: TaskParams | None
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Learned sampler: scan the M frames read at low resolution, then read only the T selected
        frames at full resolution and amplify them. Returns what :meth:`_sample_dense` returns."""
        sampler = self.model.sampler
        numbers, scan_clips = self._load(paths, low_res=True)
        with autocast(self.device, self.amp):
            plan = sampler.plan(scan_clips, flags, task)
        selected = numbers.gather(1, plan.indices.cpu())
        full = normalize(torch.stack([self.decode(p, s) for p, s in zip(paths, selected, strict=True)]).to(self.device))
        with autocast(self.device, self.amp):
            return sampler.apply(plan, full), plan.video_feature, selected

    def _embed_batch(
        self, paths: Sequence[Path], is_support: bool, task: TaskParams | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Embed up to ``batch_size`` videos: embeddings ``[B, T, D']`` and selected frame numbers
        ``[B, T]``, in the order of ``paths``. Video files and frame folders take their own path
        (module docstring); the results are put back in order."""
        two_pass = [self._two_pass(p) for p in paths]
        groups = [[i for i, t in enumerate(two_pass) if t == kind] for kind in (False, True)]
        embeddings, selected = [], []
        for rows, sample in zip(groups, (self._sample_dense, self._sample_two_pass), strict=True):
            if not rows:
                continue
            flags = torch.full((len(rows),), is_support, dtype=torch.bool, device=self.device)
            frames, video_feature, numbers = sample([paths[i] for i in rows], flags, task)
            with autocast(self.device, self.amp):
                embeddings.append(self.model.embed_frames(frames, video_feature))
            selected.append(numbers)
        order = torch.tensor([i for rows in groups for i in rows]).argsort()
        return torch.cat(embeddings)[order.to(self.device)], torch.cat(selected)[order]

    def _embed_all(self, paths: Sequence[Path], is_support: bool, task: TaskParams | None):
        parts = [self._embed_batch(paths[i : i + self.batch_size], is_support, task)
                 for i in range(0, len(paths), self.batch_size)]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    # ---------------------------------------------------------------- support set

    def fingerprint(self) -> str:
        """A hash of the model's weights and the preprocessing: part of the support cache key."""
        if self._fingerprint is None:
            digest = hashlib.sha256(repr((self.num_dense, self.transform, self.scan_transform, self.amp)).encode())
            for name, tensor in self.model.state_dict().items():
                digest.update(name.encode())
                digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    def cache_path(self, support_dir: Path, classes: dict[str, list[Path]]) -> Path:
        """Where the embeddings of this support set, under this model, are cached."""
        digest = hashlib.sha256(self.fingerprint().encode())
        for name, videos in classes.items():
            for video in videos:
                stat = video.stat()
                digest.update(f"{name}\0{video.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        folder = self.cache_dir if self.cache_dir is not None else support_dir
        return folder / f"{_CACHE_PREFIX}{digest.hexdigest()[:20]}.pt"

    def set_support(self, support_dir: str | os.PathLike) -> list[str]:
        """Embed the support folder's videos (or load them from the cache); returns the class names.

        Raises:
            DatasetError: a malformed support folder (see :func:`~stsampler.data.folders.scan_support_dir`).
            VideoReadError: a support video cannot be decoded (the message names it).
        """
        support_dir = Path(support_dir)
        classes = scan_support_dir(support_dir)
        cache = self.cache_path(support_dir, classes)
        cached = self._read_cache(cache, classes)
        if cached is None:
            self.support = self._compute_support(classes)
            self._write_cache(cache)
        else:
            self.support = cached
        return self.support.classes

    def _compute_support(self, classes: dict[str, list[Path]]) -> _Support:
        paths = [video for videos in classes.values() for video in videos]
        labels = torch.tensor([c for c, videos in enumerate(classes.values()) for _ in videos], device=self.device)
        with torch.inference_mode():
            task = self._task(paths)
            embeddings, _ = self._embed_all(paths, True, task)
            try:
                with autocast(self.device, self.amp):
                    self.model.classify(embeddings, labels, embeddings[:1], len(classes))
            except ValueError as exc:
                raise DatasetError(
                    f"the support set does not suit this model's few-shot head ({exc}); give every class "
                    "the same number of example videos."
                ) from None
        return _Support(list(classes), embeddings, labels, task)

    def _read_cache(self, path: Path, classes: dict[str, list[Path]]) -> _Support | None:
        """The cached support set of ``classes``, or None when absent, unreadable or not of their shape."""
        if not path.is_file():
            return None
        try:
            data = torch.load(path, map_location=self.device, weights_only=True)
            if data.get("version") != _CACHE_VERSION:
                return None
            task = None if data["task"] is None else TaskParams(**data["task"])
            support = _Support(list(data["classes"]), data["embeddings"], data["labels"], task)
            problem = self._cache_mismatch(support, classes)
        except Exception as exc:  # a damaged cache is only a lost shortcut: recompute it
            problem = f"unreadable: {exc}"
        if problem is not None:
            log.warning("%s: ignoring the support cache (%s); recomputing it.", path, problem)
            return None
        return support

    def _cache_mismatch(self, support: _Support, classes: dict[str, list[Path]]) -> str | None:
        """Why a loaded cache cannot serve the support set ``classes`` (None if it can): other class
        names or labels, or embeddings not of the shape ``[S, T, D']`` this model computes."""
        labels = [c for c, videos in enumerate(classes.values()) for _ in videos]
        if support.classes != list(classes):
            return "other classes"
        if not isinstance(support.labels, torch.Tensor) or support.labels.tolist() != labels:
            return "other labels"
        expected = (len(labels), self.model.sampler.num_frames, self.model.embed_dim)
        shape = tuple(support.embeddings.shape) if isinstance(support.embeddings, torch.Tensor) else None
        if shape != expected:
            return f"embeddings of shape {shape}, expected {expected}"
        return None

    def _write_cache(self, path: Path) -> None:
        support = self.support
        task = None
        if support.task is not None:
            task = {k: None if v is None else v.cpu() for k, v in support.task._asdict().items()}
        data = {
            "version": _CACHE_VERSION,
            "classes": support.classes,
            "embeddings": support.embeddings.cpu(),
            "labels": support.labels.cpu(),
            "task": task,
        }
        try:
            atomic_torch_save(path, data)
        except OSError as exc:
            log.warning("%s: cannot write the support cache (%s); continuing without it.", path, exc)

    # ---------------------------------------------------------------- queries

    def predict(self, queries: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Prediction]:
        """Label query videos: files, frame folders, or folders searched recursively (see
        :func:`~stsampler.data.folders.collect_queries`).

        Raises:
            StsamplerError: :meth:`set_support` was not called.
            DatasetError / VideoReadError: a query is missing or cannot be decoded (named).
        """
        if self.support is None:
            raise StsamplerError("no support set: call set_support(<folder of example videos>) first.")
        paths = collect_queries(queries)
        support = self.support
        predictions: list[Prediction] = []
        with torch.inference_mode():
            for start in range(0, len(paths), self.batch_size):
                batch = paths[start : start + self.batch_size]
                embeddings, selected = self._embed_batch(batch, False, support.task)
                with autocast(self.device, self.amp):
                    logits = self.model.classify(
                        support.embeddings, support.labels, embeddings, len(support.classes)
                    )
                probs = logits.float().softmax(dim=-1).cpu()
                predictions.extend(
                    Prediction(
                        path=path,
                        label=support.classes[int(row.argmax())],
                        probabilities=dict(zip(support.classes, row.tolist(), strict=True)),
                        frame_indices=frames.tolist(),
                    )
                    for path, row, frames in zip(batch, probs, selected, strict=True)
                )
        return predictions

