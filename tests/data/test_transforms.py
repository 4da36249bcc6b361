"""ClipTransform (resize / crop / flip, the same for the whole clip) and normalize."""
from __future__ import annotations

import pytest
import torch

from stsampler.data.transforms import IMAGENET_MEAN, IMAGENET_STD, ClipTransform, denormalize, normalize


def coordinate_clip(frames: int = 6, height: int = 40, width: int = 60) -> torch.Tensor:
    """uint8 [T, 3, H, W]: channel 0 = column, channel 1 = row, channel 2 = frame number."""
    rows = torch.arange(height).view(height, 1).expand(height, width)
    cols = torch.arange(width).view(1, width).expand(height, width)
    clip = torch.empty(frames, 3, height, width, dtype=torch.uint8)
    for t in range(frames):
        clip[t, 0] = cols
        clip[t, 1] = rows
        clip[t, 2] = t
    return clip


def test_train_crop_and_flip_are_the_same_for_every_frame():
    clip = coordinate_clip()
    transform = ClipTransform(crop_size=24, resize_short=None, train=True, flip=True)
    gen = torch.Generator().manual_seed(0)
    flips = positions = 0
    seen_positions = set()
    for _ in range(40):
        out = transform(clip, generator=gen)
        assert out.shape == (6, 3, 24, 24) and out.dtype == torch.uint8
        for t in range(6):
            assert torch.equal(out[t, :2], out[0, :2])  # same crop, same flip
            assert bool((out[t, 2] == t).all())  # frames keep their order
        cols = out[0, 0, 0].tolist()
        rows = out[0, 1, :, 0].tolist()
        assert rows == list(range(rows[0], rows[0] + 24))  # rows never flipped
        if cols == list(range(cols[0], cols[0] + 24)):
            positions += 1
            seen_positions.add((rows[0], cols[0]))
        else:
            assert cols == list(range(cols[0], cols[0] - 24, -1))  # a mirror image of a crop
            flips += 1
    assert flips > 5 and positions > 5
    assert len(seen_positions) > 3


def test_no_flip_when_forbidden():
    clip = coordinate_clip()
    transform = ClipTransform(crop_size=24, resize_short=None, train=True, flip=False)
    gen = torch.Generator().manual_seed(0)
    for _ in range(40):
        cols = transform(clip, generator=gen)[0, 0, 0].tolist()
        assert cols == sorted(cols)


def test_test_mode_centre_crop_without_randomness():
    clip = coordinate_clip()
    transform = ClipTransform(crop_size=24, resize_short=None, train=False)
    out = transform(clip)
    assert out.shape == (6, 3, 24, 24)
    assert out[0, 0, 0].tolist() == list(range(18, 42))  # (60 - 24) / 2 = 18
    assert out[0, 1, :, 0].tolist() == list(range(8, 32))  # (40 - 24) / 2 = 8
    assert torch.equal(transform(clip), out)


def test_generator_determinism():
    clip = coordinate_clip()
    transform = ClipTransform(crop_size=20, resize_short=None, train=True)
    a = transform(clip, generator=torch.Generator().manual_seed(5))
    b = transform(clip, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


@pytest.mark.parametrize("train", [False, True])
def test_resize_then_crop_shapes(train):
    clip = torch.randint(0, 256, (4, 3, 120, 200), dtype=torch.uint8)
    out = ClipTransform(crop_size=64, resize_short=80, train=train)(clip, generator=torch.Generator().manual_seed(0))
    assert out.shape == (4, 3, 64, 64) and out.dtype == torch.uint8
    portrait = torch.randint(0, 256, (2, 3, 300, 100), dtype=torch.uint8)
    assert ClipTransform(crop_size=50, resize_short=64, train=train)(portrait).shape == (2, 3, 50, 50)


def test_resize_is_skipped_at_the_target_size():
    clip = coordinate_clip(2, 32, 48)
    out = ClipTransform(crop_size=32, resize_short=32, train=False)(clip)
    assert out[0, 0, 0].tolist() == list(range(8, 40))  # untouched pixels, centre crop


def test_small_clips_are_scaled_up_to_the_crop():
    clip = torch.randint(0, 256, (3, 3, 20, 30), dtype=torch.uint8)
    for train in (False, True):
        assert ClipTransform(crop_size=28, resize_short=None, train=train)(clip).shape == (3, 3, 28, 28)


def test_bad_input():
    with pytest.raises(ValueError):
        ClipTransform()(torch.zeros(3, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError):
        ClipTransform(crop_size=0)


def test_normalize_matches_formula_and_round_trips():
    frames = torch.randint(0, 256, (2, 5, 3, 8, 10), dtype=torch.uint8)
    out = normalize(frames)
    assert out.dtype == torch.float32 and out.shape == frames.shape
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    expected = (frames.float() / 255.0 - mean) / std
    assert torch.allclose(out, expected, atol=1e-5)
    assert torch.allclose(denormalize(out), frames.float() / 255.0, atol=1e-5)
    half = normalize(frames, dtype=torch.bfloat16)
    assert half.dtype == torch.bfloat16
    assert torch.allclose(half.float(), expected, atol=0.02)
    with pytest.raises(TypeError):
        normalize(frames.float())
    with pytest.raises(ValueError):
        normalize(torch.zeros(2, 4, 4, dtype=torch.uint8))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_normalize_stays_on_the_device():
    frames = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8, device="cuda")
    assert normalize(frames).device == frames.device


@pytest.mark.parametrize(
    ("height", "width", "crop", "short"),
    [(90, 160, 64, 80), (160, 90, 64, 80), (40, 50, 64, 32), (64, 64, 64, None)],
)
def test_crop_geometry_maps_points_where_the_transform_puts_them(height, width, crop, short):
    transform = ClipTransform(crop, short, train=False)
    y0, x0, y1, x1 = height // 3, width // 3, height // 3 + height // 4, width // 3 + width // 4
    frames = torch.zeros(1, 3, height, width, dtype=torch.uint8)
    frames[..., y0:y1, x0:x1] = 255
    bright = (transform(frames)[0, 0] > 127).nonzero()
    scale_y, scale_x, top, left = transform.crop_geometry(height, width)
    expected = torch.tensor([y0 * scale_y - top, x0 * scale_x - left, y1 * scale_y - top, x1 * scale_x - left])
    found = torch.cat([bright.amin(dim=0), bright.amax(dim=0) + 1]).float()
    assert (found - expected).abs().max() <= 1.0


def test_crop_geometry_refuses_a_random_crop():
    with pytest.raises(ValueError, match="random"):
        ClipTransform(64, 80, train=True).crop_geometry(90, 160)
