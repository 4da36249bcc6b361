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
