"""Square resizing shared by the scanner and the recogniser: bilinear, antialiased when shrinking."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from stsampler.ops.resize import resize_square


@pytest.mark.parametrize(("shape", "side", "antialias"), [((2, 3, 40, 32), 16, True), ((2, 3, 16, 16), 24, False)])
def test_resize_square_is_bilinear_and_antialiased_when_shrinking(
    shape: tuple[int, ...], side: int, antialias: bool
) -> None:
    """Shrinking, the antialiased and plain results differ by up to 0.3 here, so the first case checks the
    flag; enlarging, PyTorch's antialias changes nothing, so the second checks the bilinear result only."""
    frames = torch.rand(*shape, generator=torch.Generator().manual_seed(0))
    expected = F.interpolate(frames, size=(side, side), mode="bilinear", align_corners=False, antialias=antialias)
    torch.testing.assert_close(resize_square(frames, side), expected)


def test_resize_square_returns_frames_of_that_size_unchanged() -> None:
    frames = torch.rand(2, 3, 16, 16)
    assert resize_square(frames, 16) is frames
