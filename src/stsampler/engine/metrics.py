"""Evaluation metrics beyond accuracy: how well a sampler's picks hit the synthetic actions' events.

:class:`EventScorer` measures, during evaluation, the *temporal hit rate* (fraction of the selected
frames that fall inside the event span), overall and per test class, and the *magnification* of the
event box (how many times more output pixels the box gets than in the unwarped frame).
"""
from __future__ import annotations

from pathlib import Path

import torch

from stsampler.config import Config
from stsampler.data.dataset import VideoDataset
from stsampler.data.events import event_table
from stsampler.data.synthetic import load_metadata
from stsampler.models.recognizer import RecognizerOutput


def synthetic_metadata(cfg: Config) -> dict | None:
    """The event metadata of a synthetic dataset, to score the sampler's picks: ``data.metadata``, else a
    ``metadata.json`` beside the split folder; None for other data."""
    if cfg.data.metadata is not None:
        return load_metadata(cfg.data.metadata)
    if cfg.data.split_dir is not None and (Path(cfg.data.split_dir).parent / "metadata.json").is_file():
        return load_metadata(Path(cfg.data.split_dir).parent)
    return None


def event_scorer(cfg: Config, dataset: VideoDataset, metadata: dict | None) -> EventScorer | None:
    """A fresh :class:`EventScorer` of ``dataset`` when there is event ``metadata`` and the sampler of ``cfg``
    chooses its frames (None for the oracle, which is handed the event, and for data without events)."""
    if metadata is None or cfg.sampler.kind == "oracle":
        return None
    return EventScorer(dataset, metadata)


class EventScorer:
    """Accumulates the temporal hit rate and event magnification over evaluation episodes.

    Use as the ``on_batch`` callback of :func:`stsampler.engine.evaluate.evaluate`.

    Args:
        dataset: the evaluated dataset (its items are looked up in ``metadata`` by ``class/video_id``);
            its evaluation transform maps the boxes into the network's input frame.
        metadata: the synthetic dataset's metadata (:func:`stsampler.data.synthetic.load_metadata`).
    """

    def __init__(self, dataset: VideoDataset, metadata: dict) -> None:
        self.spans, self.boxes, self.sizes = event_table(dataset.items, metadata)
        self.transform = dataset.transform
        self.class_names = [item.class_name for item in dataset.items]
        self.class_hits: dict[str, list[int]] = {}
        self.magnification_sum = 0.0
        self.magnification_count = 0

    def _boxes_in_crop(self, video: int, frame_numbers: torch.Tensor) -> torch.Tensor:
        """Event boxes of ``video`` at ``frame_numbers [T]`` (inside the span).

        Returns normalised crop coordinates ``[T, 4]``.
        """
        start = int(self.spans[video, 0])
        box = self.boxes[video][frame_numbers - start]
        scale_y, scale_x, top, left = self.transform.crop_geometry(*self.sizes[video].tolist())
        scales = torch.tensor([scale_x, scale_y, scale_x, scale_y])
        offsets = torch.tensor([left, top, left, top], dtype=torch.float32)
        return ((box * scales - offsets) * (2.0 / self.transform.crop_size) - 1.0).clamp(-1.0, 1.0)

    def __call__(self, batch: dict[str, torch.Tensor], output: RecognizerOutput) -> None:
        """Score one evaluated batch: ``batch["indices"]`` (dataset rows ``[B]``) and
        ``batch["frame_indices"]`` (decoded frame numbers ``[B, M]``) against ``output.sampler_output``."""
        sampled = output.sampler_output
        selected = batch["frame_indices"].gather(1, sampled.indices.cpu())
        spans = self.spans[batch["indices"]]
        inside = (selected >= spans[:, :1]) & (selected < spans[:, 1:])
        grid = sampled.grid.float().cpu() if sampled.grid is not None else None
        row_hits = inside.sum(dim=1).tolist()
        for row, video in enumerate(batch["indices"].tolist()):
            counts = self.class_hits.setdefault(self.class_names[video], [0, 0])
            counts[0] += row_hits[row]
            counts[1] += inside.shape[1]
            if not row_hits[row]:
                continue
            mask = inside[row]
            boxes = self._boxes_in_crop(video, selected[row][mask])
            input_area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) / 4.0
            if grid is None:
                ratio = torch.ones_like(input_area)
            else:
                g = grid[row][mask]
                gx, gy = g[:, 0, :, 0], g[:, :, 0, 1]
                fx = ((gx >= boxes[:, 0:1]) & (gx < boxes[:, 2:3])).float().mean(dim=1)
                fy = ((gy >= boxes[:, 1:2]) & (gy < boxes[:, 3:4])).float().mean(dim=1)
                ratio = fx * fy / input_area.clamp_min(1e-6)
            self.magnification_sum += float(ratio.sum())
            self.magnification_count += ratio.numel()

    @property
    def frames(self) -> int:
        """Selected frames scored so far, over all classes."""
        return sum(total for _, total in self.class_hits.values())

    @property
    def hit_rate(self) -> float:
        """Fraction of the selected frames inside the event span, in percent."""
        return 100.0 * sum(hits for hits, _ in self.class_hits.values()) / max(self.frames, 1)

    @property
    def per_class_hit_rate(self) -> dict[str, float]:
        """The hit rate of each class's selected frames, in percent, by class name (sorted)."""
        return {name: 100.0 * hits / total for name, (hits, total) in sorted(self.class_hits.items())}

    @property
    def magnification(self) -> float:
        """Mean area magnification of the event box over selected frames inside the event (1 = none)."""
        return self.magnification_sum / max(self.magnification_count, 1)
