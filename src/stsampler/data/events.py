"""Ground-truth events of synthetic videos: their table, the best reachable hit rate, the oracle clips.

The synthetic generator (:mod:`stsampler.data.synthetic`) records, for every video, the frame span
of its class event and the event's box in each of those frames.

* :func:`event_table` reads them for a list of videos (the evaluation metric,
  :class:`stsampler.engine.metrics.EventScorer`, uses it too).
* :func:`best_hit_rate` is the ceiling of the temporal hit rate for a sampler choosing among M
  scanned frames.
* :class:`OracleDataset` serves the upper bound of any sampler: T frames spread over the event
  span, each cropped to its event box or all cropped to one box around the object in every one.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torchvision.ops import roi_align

from stsampler.data.dataset import VideoDataset
from stsampler.data.indices import segment_indices
from stsampler.data.splits import VideoItem
from stsampler.data.transforms import ClipTransform
from stsampler.data.video import read_frames
from stsampler.errors import DatasetError


def event_table(items: Sequence[VideoItem], metadata: dict) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
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
    spans, _, _ = event_table(items, metadata)
    lengths = [metadata["videos"][item.key]["num_frames"] for item in items]
    scanned = torch.stack([segment_indices(n, num_dense) for n in lengths])
    inside = ((scanned >= spans[:, :1]) & (scanned < spans[:, 1:])).sum(dim=1)
    return 100.0 * float(inside.clamp_max(num_selected).sum()) / (num_selected * len(items))


def clip_box(boxes: torch.Tensor) -> torch.Tensor:
    """The square box ``[1, 4]`` (x1, y1, x2, y2) centred on the union of ``boxes [T, 4]``, with the
    union's longer side: the object in every frame, at one scale and without changing its shape."""
    low, high = boxes[:, :2].amin(dim=0), boxes[:, 2:].amax(dim=0)
    centre, half = (low + high) / 2, (high - low).amax() / 2
    return torch.cat([centre - half, centre + half])[None]


#: How the oracle crops its frames (``sampler.oracle_box``).
ORACLE_BOXES = ("frame", "clip")


class OracleDataset(VideoDataset):
    """The upper bound of a sampler on synthetic actions: the event's frames, cropped to its object.

    Each item holds ``num_frames`` (T) frames spread over the event span (segment centres at test,
    jittered in training), cropped and resized to ``transform.crop_size``:
    ``{"frames": uint8 [T, 3, S, S], ...}`` as :class:`VideoDataset`. Pair it with the uniform
    sampler taking all T frames.

    ``box``: ``"frame"`` crops each frame to its own event box, the most magnification; the object
    then sits in the same place at the same size in every frame, which hides which way it moves and
    whether it grows. ``"clip"`` crops all T frames to one box (:func:`clip_box`), which keeps that
    motion and magnifies less (``docs/notes.md`` measures both).
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
        box: str = "frame",
    ) -> None:
        if box not in ORACLE_BOXES:
            raise ValueError(f"oracle box {box!r} is not one of {ORACLE_BOXES}")
        super().__init__(
            items, num_frames, transform, train=train, seed=seed, max_bad_fraction=max_bad_fraction,
            cache_bytes=cache_bytes,
        )
        self.spans, self.boxes, _ = event_table(self.items, metadata)
        self.box = box

    def _load(self, index: int, generator: torch.Generator) -> dict:
        start, end = self.spans[index].tolist()
        offsets = segment_indices(end - start, self.num_frames, random=self.train, generator=generator)
        frames = read_frames(self.items[index].path, start + offsets)
        boxes = self.boxes[index][offsets]
        if self.box == "clip":
            boxes = clip_box(boxes).expand(len(offsets), 4)
        rois = torch.cat([torch.arange(len(offsets), dtype=torch.float32)[:, None], boxes], dim=1)
        size = self.transform.crop_size
        crops = roi_align(frames.float(), rois, output_size=(size, size), aligned=True)
        return {
            "frames": crops.round().clamp(0, 255).to(torch.uint8),
            "label": self.labels[index],
            "index": index,
            "frame_indices": start + offsets,
        }
