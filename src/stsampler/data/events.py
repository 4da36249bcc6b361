"""Ground-truth events of synthetic videos: scoring a sampler's picks, and the oracle clips.

The synthetic generator (:mod:`stsampler.data.synthetic`) records, for every video, the frame span
of its class event and the event's box in each of those frames. This module uses them twice:

* :class:`EventScorer` measures what a sampler did during evaluation: the *temporal hit rate*
  (fraction of the selected frames that fall inside the event span) and the *magnification* of
  the event box (how many times more output pixels the box gets than in the unwarped frame).
* :func:`best_hit_rate` is the ceiling of that hit rate for a sampler choosing among M scanned frames.
* :class:`OracleDataset` serves the upper bound of any sampler: T frames spread over the event
  span, each cropped to its event box.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torchvision.ops import roi_align

from stsampler.data.dataset import VideoDataset
from stsampler.data.indices import segment_indices
from stsampler.data.splits import VideoItem
from stsampler.data.transforms import ClipTransform
from stsampler.data.video import read_frames
from stsampler.errors import DatasetError
from stsampler.samplers.base import SamplerOutput


def _event_table(items: Sequence[VideoItem], metadata: dict) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
    """Per item: event span ``[n, 2]`` (end exclusive), per-frame boxes ``[L_i, 4]``, frame size ``[n, 2]`` (H, W)."""
    videos = metadata["videos"]
    missing = [item.key for item in items if item.key not in videos]
    if missing:
        raise DatasetError(
            f"{len(missing)} videos have no entry in the synthetic metadata (e.g. {missing[0]}); "
            "pass the metadata.json written with these videos"
        )
    spans = torch.tensor([[videos[i.key]["event_start"], videos[i.key]["event_end"]] for i in items])
    boxes = [torch.tensor(videos[i.key]["boxes"], dtype=torch.float32).reshape(-1, 4) for i in items]
    sizes = torch.tensor([[videos[i.key]["height"], videos[i.key]["width"]] for i in items])
    return spans, boxes, sizes


def best_hit_rate(items: Sequence[VideoItem], metadata: dict, num_dense: int, num_selected: int) -> float:
    """The highest temporal hit rate any sampler of ``num_selected`` of the ``num_dense`` scanned
    frames (test-time segment centres) can reach on ``items``, each video counted once, in percent:
    a video whose event holds n scanned frames contributes ``min(n, num_selected)`` hits."""
    spans, _, _ = _event_table(items, metadata)
    lengths = [metadata["videos"][item.key]["num_frames"] for item in items]
    scanned = torch.stack([segment_indices(n, num_dense) for n in lengths])
    inside = ((scanned >= spans[:, :1]) & (scanned < spans[:, 1:])).sum(dim=1)
    return 100.0 * float(inside.clamp_max(num_selected).sum()) / (num_selected * len(items))


class EventScorer:
    """Accumulates the temporal hit rate and event magnification over evaluation episodes.

    Use as the ``on_batch`` callback of :func:`stsampler.engine.evaluate.evaluate`.

    Args:
        dataset: the evaluated dataset (its items are looked up in ``metadata`` by ``class/video_id``);
            its evaluation transform maps the boxes into the network's input frame.
        metadata: the synthetic dataset's metadata (:func:`stsampler.data.synthetic.load_metadata`).
    """

    def __init__(self, dataset: VideoDataset, metadata: dict) -> None:
        self.spans, self.boxes, self.sizes = _event_table(dataset.items, metadata)
        self.transform = dataset.transform
        self.hits = 0
        self.frames = 0
        self.magnification_sum = 0.0
        self.magnification_count = 0

    def _boxes_in_crop(self, video: int, frame_numbers: torch.Tensor) -> torch.Tensor:
        """Event boxes of ``video`` at ``frame_numbers [T]`` (inside the span) in normalised crop coordinates ``[T, 4]``."""
        start = int(self.spans[video, 0])
        box = self.boxes[video][frame_numbers - start]
        scale_y, scale_x, top, left = self.transform.crop_geometry(*self.sizes[video].tolist())
        scales = torch.tensor([scale_x, scale_y, scale_x, scale_y])
        offsets = torch.tensor([left, top, left, top], dtype=torch.float32)
        return ((box * scales - offsets) * (2.0 / self.transform.crop_size) - 1.0).clamp(-1.0, 1.0)

    def __call__(self, batch: dict[str, torch.Tensor], output) -> None:
        sampled: SamplerOutput = output.sampler_output
        selected = batch["frame_indices"].gather(1, sampled.indices.cpu())
        spans = self.spans[batch["indices"]]
        inside = (selected >= spans[:, :1]) & (selected < spans[:, 1:])
        self.hits += int(inside.sum())
        self.frames += inside.numel()
        grid = sampled.grid.float().cpu() if sampled.grid is not None else None
        for row, video in enumerate(batch["indices"].tolist()):
            mask = inside[row]
            if not bool(mask.any()):
                continue
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
    def hit_rate(self) -> float:
        """Fraction of the selected frames inside the event span, in percent."""
        return 100.0 * self.hits / max(self.frames, 1)

    @property
    def magnification(self) -> float:
        """Mean area magnification of the event box over selected frames inside the event (1 = none)."""
        return self.magnification_sum / max(self.magnification_count, 1)


class OracleDataset(VideoDataset):
    """The upper bound of a sampler on synthetic actions: the event's frames, cropped to its box.

    Each item holds ``num_frames`` (T) frames spread over the event span (segment centres at test,
    jittered in training), each cropped to that frame's event box and resized to
    ``transform.crop_size``: ``{"frames": uint8 [T, 3, S, S], ...}`` as :class:`VideoDataset`.
    Pair it with the uniform sampler taking all T frames.
    """

    def __init__(
        self,
        items: Sequence[VideoItem],
        num_frames: int,
        transform: ClipTransform,
        metadata: dict,
        train: bool = False,
        seed: int = 0,
        max_bad_fraction: float = 0.05,
        cache_bytes: int = 0,
    ) -> None:
        super().__init__(
            items, num_frames, transform, train=train, seed=seed, max_bad_fraction=max_bad_fraction,
            cache_bytes=cache_bytes,
        )
        self.spans, self.boxes, _ = _event_table(self.items, metadata)

    def _load(self, index: int, generator: torch.Generator) -> dict:
        start, end = self.spans[index].tolist()
        offsets = segment_indices(end - start, self.num_frames, random=self.train, generator=generator)
        frames = read_frames(self.items[index].path, start + offsets)
        rois = torch.cat([torch.arange(len(offsets), dtype=torch.float32)[:, None], self.boxes[index][offsets]], dim=1)
        size = self.transform.crop_size
        crops = roi_align(frames.float(), rois, output_size=(size, size), aligned=True)
        return {
            "frames": crops.round().clamp(0, 255).to(torch.uint8),
            "label": self.labels[index],
            "index": index,
            "frame_indices": start + offsets,
        }
