"""The event table's ceiling (best hit rate) and the oracle dataset on a tiny synthetic set."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torchvision.ops import roi_align

from stsampler.data.dataset import VideoDataset
from stsampler.data.events import OracleDataset, best_hit_rate, clip_box
from stsampler.data.transforms import ClipTransform
from stsampler.data.video import read_frames


def _span(metadata: dict, dataset: VideoDataset, i: int) -> tuple[int, int]:
    video = metadata["videos"][dataset.items[i].key]
    return video["event_start"], video["event_end"]


def test_oracle_serves_event_frames_cropped_to_the_box(event_videos):
    _, split, metadata = event_videos
    oracle = OracleDataset(split.items, num_frames=4, transform=ClipTransform(32, None), metadata=metadata)
    plain = VideoDataset(split.items, num_frames=4, transform=ClipTransform(32, 64))
    item = oracle[0]
    start, end = _span(metadata, oracle, 0)
    assert item["frames"].shape == (4, 3, 32, 32) and item["frames"].dtype == torch.uint8
    assert bool(((item["frame_indices"] >= start) & (item["frame_indices"] < end)).all())
    # The event object is saturated colour; the crop holds far more of it than the whole frame.
    def colourfulness(frames: torch.Tensor) -> float:
        f = frames.float()
        return float((f.amax(dim=1) - f.amin(dim=1)).mean())
    assert colourfulness(item["frames"]) > colourfulness(plain[0]["frames"])


def test_clip_box_is_the_square_around_the_union_of_the_boxes() -> None:
    boxes = torch.tensor([[0.0, 0.0, 2.0, 2.0], [4.0, 1.0, 6.0, 3.0]])
    torch.testing.assert_close(clip_box(boxes), torch.tensor([[0.0, -1.5, 6.0, 4.5]]))
    # One box alone keeps its centre and its longer side.
    torch.testing.assert_close(clip_box(torch.tensor([[1.0, 2.0, 3.0, 8.0]])), torch.tensor([[-1.0, 2.0, 5.0, 8.0]]))


@pytest.mark.parametrize("box", ["frame", "clip"])
def test_oracle_crops_each_frame_to_its_box_or_the_clip_to_one_box(event_videos, box: str):
    _, split, metadata = event_videos
    oracle = OracleDataset(split.items, num_frames=4, transform=ClipTransform(32, None), metadata=metadata, box=box)
    for index in range(2):
        item = oracle[index]
        video = metadata["videos"][oracle.items[index].key]
        boxes = torch.tensor(video["boxes"], dtype=torch.float32).reshape(-1, 4)
        boxes = boxes[item["frame_indices"] - video["event_start"]]
        rois = boxes if box == "frame" else clip_box(boxes).expand(4, 4)
        frames = read_frames(oracle.items[index].path, item["frame_indices"]).float()
        rois = torch.cat([torch.arange(4, dtype=torch.float32)[:, None], rois], dim=1)
        expected = roi_align(frames, rois, output_size=(32, 32), aligned=True).round().clamp(0, 255)
        torch.testing.assert_close(item["frames"].float(), expected)


def test_oracle_refuses_an_unknown_box(event_videos):
    _, split, metadata = event_videos
    with pytest.raises(ValueError, match="box"):
        OracleDataset(split.items, num_frames=4, transform=ClipTransform(32, None), metadata=metadata, box="union")


def test_best_hit_rate_counts_at_most_t_scanned_event_frames_per_video() -> None:
    items = [SimpleNamespace(key=f"c/v{i}") for i in range(2)]
    boxes = [[0, 0, 1, 1]] * 4
    metadata = {"videos": {
        "c/v0": {"event_start": 0, "event_end": 4, "num_frames": 16, "height": 8, "width": 8, "boxes": boxes},
        "c/v1": {"event_start": 8, "event_end": 12, "num_frames": 16, "height": 8, "width": 8, "boxes": boxes},
    }}
    # 8 scanned frames of 16 are 1, 3, ..., 15: two inside each event, so 2 of T = 4 picks at best.
    assert best_hit_rate(items, metadata, num_dense=8, num_selected=4) == 50.0
    assert best_hit_rate(items, metadata, num_dense=16, num_selected=4) == 100.0
    assert best_hit_rate(items, metadata, num_dense=4, num_selected=4) == 25.0
