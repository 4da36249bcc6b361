"""Tests of stsampler.viz: figure size, baseline samplers, HTML index, and `show` end to end."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from PIL import Image

from stsampler.data.transforms import normalize
from stsampler.samplers.base import SamplerOutput
from stsampler.viz import DPI, FIGSIZE, render_sampler_figure, write_html_index

M, T, SIZE = 8, 4, 32
EXPECTED = (int(FIGSIZE[0] * DPI), int(FIGSIZE[1] * DPI))


def _clip(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (M, 3, SIZE, SIZE), generator=g, dtype=torch.uint8)


def _output(clip: torch.Tensor, indices: list[int], learned: bool) -> SamplerOutput:
    """A stand-in sampler output for one video (B = 1)."""
    idx = torch.tensor([indices])
    frames = normalize(clip[idx[0]])[None]
    if not learned:
        return SamplerOutput(frames=frames, indices=idx)
    scores = torch.linspace(0.0, 1.0, M)[None]
    saliency = torch.rand(1, T, 4, 4, generator=torch.Generator().manual_seed(1))
    grid = torch.zeros(1, T, SIZE, SIZE, 2)
    return SamplerOutput(frames=frames, indices=idx, scores=scores, saliency=saliency, grid=grid)


@pytest.mark.parametrize("learned", [True, False])
def test_figure_has_fixed_pixel_size(tmp_path: Path, learned: bool) -> None:
    clip = _clip()
    path = render_sampler_figure(clip, _output(clip, [1, 3, 5, 7], learned), tmp_path / "a.png",
                                 title="t", event_span=(2, 5))
    assert path == tmp_path / "a.png"
    with Image.open(path) as image:
        assert image.size == EXPECTED
    assert not list(tmp_path.glob(".*.tmp"))


def test_figure_shows_the_selection(tmp_path: Path) -> None:
    clip = _clip()
    first = render_sampler_figure(clip, _output(clip, [0, 1, 2, 3], True), tmp_path / "a.png")
    second = render_sampler_figure(clip, _output(clip, [4, 5, 6, 7], True), tmp_path / "b.png")
    with Image.open(first) as a, Image.open(second) as b:
        assert a.tobytes() != b.tobytes()


def test_figure_rejects_a_batch_of_two(tmp_path: Path) -> None:
    clip = _clip()
    out = _output(clip, [0, 1, 2, 3], False)
    two = SamplerOutput(frames=out.frames.expand(2, -1, -1, -1, -1), indices=out.indices.expand(2, -1))
    with pytest.raises(ValueError, match="one video"):
        render_sampler_figure(clip, two, tmp_path / "a.png")


def test_html_index_links_resolve(tmp_path: Path) -> None:
    clip = _clip()
    images = [
        render_sampler_figure(clip, _output(clip, [0, 2, 4, 6], True), tmp_path / "img" / f"{name}.png")
        for name in ("v1", "v2")
    ]
    page = write_html_index(images, tmp_path / "index.html", title="My <videos>")
    text = page.read_text()
    links = re.findall(r'src="([^"]+)"', text)
    assert links == ["img/v1.png", "img/v2.png"]
    assert all((page.parent / link).is_file() for link in links)
    assert "My &lt;videos&gt;" in text


def _frame_folder(folder: Path, shift: int, frames: int = 12) -> Path:
    """A small video as a frame folder: a bright square drifting over a dark background."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(frames):
        image = torch.zeros(40, 56, 3, dtype=torch.uint8)
        image[8 + i : 24 + i, shift : shift + 16] = 230
        Image.fromarray(image.numpy()).save(folder / f"{i:04d}.png")
    return folder


def _checkpoint(tmp_path: Path, kind: str) -> Path:
    from stsampler.config import config_from_dict, config_to_dict
    from stsampler.engine.builder import build_model
    from stsampler.engine.checkpoint import save_checkpoint

    cfg = config_from_dict(
        {
            "data": {"split_dir": "unused", "num_frames": M, "crop_size": SIZE, "resize_short": SIZE + 4},
            "sampler": {"kind": kind, "num_frames": T, "scanner_pretrained": False, "scan_size": 32},
            "model": {"backbone": "smallcnn", "pretrained": False},
        }
    )
    torch.manual_seed(0)
    model = build_model(cfg, num_train_classes=2)
    state = {"model": model.state_dict(), "config": config_to_dict(cfg), "num_train_classes": 2}
    return save_checkpoint(tmp_path / f"{kind}.pt", state)


@pytest.mark.parametrize("kind", ["learned", "uniform"])
def test_show_writes_one_image_per_video_and_an_index(tmp_path: Path, kind: str) -> None:
    from stsampler.viz import show

    videos = [_frame_folder(tmp_path / "a" / "walk", 2), _frame_folder(tmp_path / "b" / "walk", 30)]
    paths = show(_checkpoint(tmp_path, kind), videos, tmp_path / "out")
    out = tmp_path / "out"
    assert paths == [out / "walk.png", out / "walk-2.png", out / "index.html"]
    for png in paths[:2]:
        with Image.open(png) as image:
            assert image.size == EXPECTED
    links = re.findall(r'src="([^"]+)"', paths[2].read_text())
    assert links == ["walk.png", "walk-2.png"]


def test_show_with_support_folder(tmp_path: Path) -> None:
    from stsampler.viz import show

    support = tmp_path / "support"
    _frame_folder(support / "left" / "v1", 2)
    _frame_folder(support / "right" / "v2", 36)
    paths = show(_checkpoint(tmp_path, "learned"), [_frame_folder(tmp_path / "q", 4)], tmp_path / "out",
                 html=False, support_dir=support)
    assert paths == [tmp_path / "out" / "q.png"]
    with Image.open(paths[0]) as image:
        assert image.size == EXPECTED


def test_event_span_of_synthetic_videos(tmp_path: Path) -> None:
    import json

    from stsampler.viz import synthetic_event_span

    video = _frame_folder(tmp_path / "synth" / "videos" / "red_circle" / "v0003", 2)
    other = _frame_folder(tmp_path / "elsewhere" / "clips" / "v0003", 2)
    (tmp_path / "synth" / "metadata.json").write_text(
        json.dumps({"config": {}, "classes": ["red_circle"],
                    "videos": {"red_circle/v0003": {"event_start": 3, "event_end": 7}}})
    )
    assert synthetic_event_span(video) == (3, 7)
    assert synthetic_event_span(other) is None
    clip = _clip()
    out = _output(clip, [0, 2, 4, 6], True)
    plain = render_sampler_figure(clip, out, tmp_path / "plain.png")
    marked = render_sampler_figure(clip, out, tmp_path / "marked.png", event_span=(3, 7))
    with Image.open(plain) as a, Image.open(marked) as b:
        assert a.tobytes() != b.tobytes()


@pytest.mark.parametrize(
    "foreign",
    ['{"videos": [{"id": "v0003", "label": "walk"}]}', '{"author": "me"}', "[1, 2]", "not json"],
)
def test_a_metadata_json_stsampler_did_not_write_is_ignored_and_named_once(tmp_path: Path, caplog, foreign) -> None:
    from stsampler.viz import synthetic_event_span

    first = _frame_folder(tmp_path / "data" / "videos" / "walk" / "v0003", 2)
    second = _frame_folder(tmp_path / "data" / "videos" / "walk" / "v0004", 2)
    (tmp_path / "data" / "metadata.json").write_text(foreign)
    warned: set[Path] = set()
    with caplog.at_level("WARNING", logger="stsampler.viz"):
        assert synthetic_event_span(first, warned) is None
        assert synthetic_event_span(second, warned) is None
    notes = [r.getMessage() for r in caplog.records if "without event marks" in r.getMessage()]
    assert len(notes) == 1 and str(tmp_path / "data" / "metadata.json") in notes[0]


def test_show_draws_videos_beside_a_foreign_metadata_json(tmp_path: Path, caplog) -> None:
    from stsampler.viz import show

    video = _frame_folder(tmp_path / "data" / "videos" / "walk" / "v0003", 2)
    (tmp_path / "data" / "metadata.json").write_text('{"videos": [{"id": "v0003"}]}')
    with caplog.at_level("WARNING", logger="stsampler.viz"):
        paths = show(_checkpoint(tmp_path, "uniform"), [video, video], tmp_path / "out", html=False)
    assert [p.name for p in paths] == ["v0003.png", "v0003-2.png"]
    assert sum("without event marks" in r.getMessage() for r in caplog.records) == 1
