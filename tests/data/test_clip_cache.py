"""DecodedVideoCache: clips equal to decoding; the byte budget; a full cache decodes only what is asked."""
from __future__ import annotations

import pytest
import torch

from stsampler.data.clip_cache import DecodedVideoCache
from stsampler.data.indices import segment_indices
from stsampler.data.video import probe_video, read_frames
from stsampler.errors import VideoReadError

INDEX_SETS = [[0, 5, 11, 12, 30, 47], [47, 3, 3, 20, 0], list(range(48)), [13]]


@pytest.mark.parametrize("size", [None, 32, (24, 40)])
def test_clips_equal_decoding(tiny_video, size):
    cache = DecodedVideoCache(budget_bytes=10**8)
    generator = torch.Generator().manual_seed(0)
    index_sets = [*INDEX_SETS, *(segment_indices(48, 8, random=True, generator=generator) for _ in range(3))]
    for indices in index_sets:
        assert torch.equal(cache.read(tiny_video, indices, size), read_frames(tiny_video, indices, size=size))
    assert len(cache) == 1 and (tiny_video, size) in cache and not cache.full  # the one video is kept


def test_frame_folder_and_info(tiny_frame_folder):
    cache = DecodedVideoCache(budget_bytes=10**8)
    info = probe_video(tiny_frame_folder)
    for indices in INDEX_SETS:
        expected = read_frames(tiny_frame_folder, indices, size=16)
        assert torch.equal(cache.read(tiny_frame_folder, indices, 16, info=info), expected)


def test_returned_clip_is_a_copy(tiny_video):
    cache = DecodedVideoCache(budget_bytes=10**8)
    first = cache.read(tiny_video, [1, 2], 32)
    first.zero_()
    assert torch.equal(cache.read(tiny_video, [1, 2], 32), read_frames(tiny_video, [1, 2], size=32))


def test_a_full_cache_keeps_its_videos_and_decodes_only_what_others_ask_for(tiny_video, monkeypatch):
    import stsampler.data.clip_cache as clip_cache

    one = read_frames(tiny_video, range(48), size=(16, 24))
    cache = DecodedVideoCache(budget_bytes=2 * one.nbytes + one.nbytes // 2)
    cache.read(tiny_video, [0], (16, 24))
    cache.read(tiny_video, [0], (16, 26))
    assert cache.used_bytes <= cache.budget_bytes and len(cache) == 2 and not cache.full
    cache.read(tiny_video, [0], (16, 28))  # a third video does not fit: the cache is full, nothing is dropped
    assert cache.full and len(cache) == 2 and (tiny_video, (16, 24)) in cache and (tiny_video, (16, 26)) in cache
    decoded = []
    real_read = clip_cache.read_frames
    monkeypatch.setattr(
        clip_cache, "read_frames", lambda p, idx, **k: decoded.append(list(idx)) or real_read(p, idx, **k)
    )
    clip = cache.read(tiny_video, [3, 7], (16, 28))
    assert decoded == [[3, 7]] and torch.equal(clip, real_read(tiny_video, [3, 7], size=(16, 28)))
    assert len(cache) == 2


def test_video_larger_than_the_budget_is_not_kept(tiny_video):
    cache = DecodedVideoCache(budget_bytes=1000)
    assert torch.equal(cache.read(tiny_video, [4, 9], 32), read_frames(tiny_video, [4, 9], size=32))
    assert len(cache) == 0 and cache.used_bytes == 0


def test_out_of_range_index_names_the_file(tiny_video):
    cache = DecodedVideoCache(budget_bytes=10**8)
    cache.read(tiny_video, [0], 32)
    with pytest.raises(VideoReadError, match="out of range"):
        cache.read(tiny_video, [48], 32)
