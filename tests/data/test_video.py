"""Video and frame-folder reading: exact frames, every decoding path, sizes, errors."""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from stsampler.data import video as video_mod
from stsampler.data.video import (
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    VideoInfo,
    is_video,
    probe_video,
    read_frames,
)
from stsampler.errors import VideoReadError

SCATTERED = [5, 40, 7, 7, 47, 0, 13, 12, 11, 30, 2]
DENSE = list(range(10, 26))
MODES = [
    {"mode": "auto"},
    {"mode": "auto", "seek_threshold": 0},
    {"mode": "forward"},
    {"mode": "seek"},
]

REAL_CLIPS = {  # name: (frames, width, height)
    "bigbuckbunny.mp4": (132, 1280, 720),
    "bikes.mp4": (250, 640, 272),
    "carphone_pristine.mp4": (120, 176, 144),
}


def as_chw(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)


def reference_frames(path, indices) -> dict[int, torch.Tensor]:
    """The frames at ``indices`` from one plain sequential PyAV decode (only those kept)."""
    need = set(indices)
    out = {}
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in need:
                out[i] = torch.from_numpy(frame.to_ndarray(format="rgb24")).permute(2, 0, 1)
    return out


class SeekSpy:
    """Counts the seeks :func:`read_frames` makes (calls of the decoder's frame source with a keyframe)."""

    def __init__(self, monkeypatch):
        self.seeks = 0
        self.starts = 0
        original = video_mod._FileDecoder._frames_from
        spy = self

        def wrapped(decoder, key):
            if key is None:
                spy.starts += 1
            else:
                spy.seeks += 1
            return original(decoder, key)

        monkeypatch.setattr(video_mod._FileDecoder, "_frames_from", wrapped)


# ------------------------------------------------------------------------------- exact frames


@pytest.mark.parametrize("kwargs", MODES, ids=lambda k: "-".join(map(str, k.values())))
def test_lossless_video_matches_source_frames(lossless_video, kwargs):
    path, source = lossless_video
    for indices in ([5, 33, 7, 7, 39, 0, 13, 12, 11, 30, 2], list(range(40)), [39, 0, 39, 1, 20, 20]):
        frames = read_frames(path, indices, **kwargs)
        assert frames.dtype == torch.uint8
        assert frames.shape == (len(indices), 3, 48, 80)
        assert torch.equal(frames, as_chw(source[indices]))


@pytest.mark.parametrize("kwargs", MODES, ids=lambda k: "-".join(map(str, k.values())))
@pytest.mark.parametrize(
    "indices", [SCATTERED, DENSE, [47], list(range(48))[::-1]], ids=["scattered", "dense", "last", "reversed"]
)
def test_video_equals_png_folder_of_its_decoded_frames(tiny_video, tiny_frame_folder, kwargs, indices):
    from_video = read_frames(tiny_video, indices, **kwargs)
    from_folder = read_frames(tiny_frame_folder, indices)
    assert from_video.shape == (len(indices), 3, 64, 96)
    assert torch.equal(from_video, from_folder)


@pytest.mark.parametrize("height,width", [(32, 40), (26, 50), (64, 72), (30, 42)])
def test_odd_widths_decode_to_the_picture(tmp_path, make_frames, write_video, height, width):
    """Every column is the picture, also at widths that are not a multiple of 16 (some FFmpeg
    pixel-format converters leave the last columns unwritten there)."""
    source = make_frames(6, height, width, seed=5)
    path = write_video(tmp_path / f"w{width}.mp4", source, gop=3)
    for size in (None, (height, width)):
        for _ in range(2):
            frames = read_frames(path, [0, 3, 5], size=size).int()
            error = (frames - as_chw(source[[0, 3, 5]]).int()).abs().float()
            assert error.mean() < 12 and error[..., -8:].mean() < 25, (size, error[..., -8:].mean())


def test_order_and_repeats_are_kept(tiny_video, decode_all):
    all_frames = as_chw(decode_all(tiny_video))
    indices = [9, 3, 9, 9, 0, 47, 3]
    assert torch.equal(read_frames(tiny_video, indices), all_frames[indices])


def test_index_containers_are_accepted(tiny_video):
    expected = read_frames(tiny_video, [1, 5, 30])
    assert torch.equal(read_frames(tiny_video, torch.tensor([1, 5, 30])), expected)
    assert torch.equal(read_frames(tiny_video, np.array([1, 5, 30])), expected)
    assert torch.equal(read_frames(tiny_video, (1, 5, 30)), expected)
    with pytest.raises(TypeError):
        read_frames(tiny_video, [1.5])


def test_empty_index_list(tiny_video, tiny_frame_folder):
    assert read_frames(tiny_video, []).shape == (0, 3, 64, 96)
    assert read_frames(tiny_frame_folder, [], size=32).shape == (0, 3, 32, 48)


def test_dense_request_never_seeks_and_sparse_far_request_does(tiny_video, monkeypatch):
    spy = SeekSpy(monkeypatch)
    read_frames(tiny_video, DENSE, seek_threshold=16)
    assert spy.seeks == 0 and spy.starts == 1
    spy.seeks = spy.starts = 0
    read_frames(tiny_video, [1, 40], seek_threshold=4)  # keyframe 36 is 34 frames past frame 2
    assert spy.seeks == 1


# ------------------------------------------------------------------------------- real clips


@pytest.mark.parametrize("name", sorted(REAL_CLIPS))
def test_real_clips_probe(shared_videos, name):
    frames, width, height = REAL_CLIPS[name]
    info = probe_video(shared_videos / name)
    assert isinstance(info, VideoInfo)
    assert (info.num_frames, info.width, info.height) == (frames, width, height)
    assert info.fps > 0 and info.duration > 0
    assert abs(info.duration * info.fps - frames) <= 1


@pytest.mark.parametrize("name", sorted(REAL_CLIPS))
def test_real_clips_scattered_frames_on_every_path(shared_videos, name, monkeypatch):
    path = shared_videos / name
    n = REAL_CLIPS[name][0]
    indices = [5, 100, 7, 7, n - 1, 0, n // 2, 31, 30, 77, 76]
    expected = reference_frames(path, indices)
    assert len(expected) == len(set(indices))  # the clip really has n frames
    expected_stack = torch.stack([expected[i] for i in indices])
    info = probe_video(path)
    spy = SeekSpy(monkeypatch)
    for kwargs in MODES:
        spy.seeks = spy.starts = 0
        got = read_frames(path, indices, info=info, **kwargs)
        assert torch.equal(got, expected_stack), kwargs
        if kwargs["mode"] == "forward":
            assert spy.seeks == 0 and spy.starts == 1
        if kwargs["mode"] == "seek":
            assert spy.seeks == len(set(indices))


def test_real_clip_all_frames_in_one_pass(shared_videos, decode_all):
    path = shared_videos / "carphone_pristine.mp4"
    got = read_frames(path, range(120))
    assert torch.equal(got, as_chw(decode_all(path)))


def test_probe_cache_sees_changed_files(tmp_path, make_frames, write_video, write_frame_folder):
    path = write_video(tmp_path / "clip.mp4", make_frames(20, 32, 48))
    assert probe_video(path).num_frames == 20
    assert probe_video(path) is probe_video(path)  # cached
    write_video(tmp_path / "other.mp4", make_frames(9, 32, 48)).replace(path)
    assert probe_video(path).num_frames == 9
    folder = write_frame_folder(tmp_path / "frames", make_frames(5, 16, 16))
    assert probe_video(folder).num_frames == 5
    (folder / "00000005.png").unlink()
    assert probe_video(folder).num_frames == 4


# ------------------------------------------------------------------------------- sizes


def test_size_int_scales_the_short_side(shared_videos, tiny_frame_folder):
    bikes = shared_videos / "bikes.mp4"  # 640x272, landscape
    assert read_frames(bikes, [0, 9], size=128).shape == (2, 3, 128, 301)
    assert read_frames(tiny_frame_folder, [0, 9], size=32).shape == (2, 3, 32, 48)


def test_size_int_portrait(tmp_path, make_frames, write_video):
    path = write_video(tmp_path / "portrait.mp4", make_frames(6, 96, 64))
    assert read_frames(path, [0, 5], size=32).shape == (2, 3, 48, 32)


def test_size_tuple_is_exact(tiny_video, tiny_frame_folder):
    assert read_frames(tiny_video, [0, 3], size=(50, 70)).shape == (2, 3, 50, 70)
    assert read_frames(tiny_frame_folder, [0, 3], size=(50, 70)).shape == (2, 3, 50, 70)


def test_resized_frames_look_like_the_originals(shared_videos):
    path = shared_videos / "bikes.mp4"
    full = read_frames(path, [10, 120]).float()
    small = read_frames(path, [10, 120], size=136).float()  # exactly half: 320x136
    assert small.shape == (2, 3, 136, 320)
    pooled = torch.nn.functional.avg_pool2d(full, 2)
    assert (pooled - small).abs().mean() < 6.0


def test_resized_video_and_folder_agree(tiny_video, tiny_frame_folder):
    a = read_frames(tiny_video, [3, 20], size=(32, 48)).float()
    b = read_frames(tiny_frame_folder, [3, 20], size=(32, 48)).float()
    assert (a - b).abs().mean() < 8.0


# ------------------------------------------------------------------------------- frame folders


def test_probe_frame_folder(tiny_frame_folder):
    info = probe_video(tiny_frame_folder)
    assert info == VideoInfo(tiny_frame_folder, 48, 0.0, 0.0, 96, 64)


def test_frame_folder_natural_order_and_jpeg(tmp_path, make_frames):
    from PIL import Image

    frames = make_frames(12, 32, 40)
    folder = tmp_path / "clip"
    folder.mkdir()
    for i, array in enumerate(frames, start=1):  # 1.png ... 12.png: lexicographic order is wrong
        Image.fromarray(array).save(folder / f"{i}.png")
    (folder / "notes.txt").write_text("not a frame")
    (folder / ".hidden.png").write_bytes(b"")
    assert probe_video(folder).num_frames == 12
    assert torch.equal(read_frames(folder, [9, 1, 11]), as_chw(frames[[9, 1, 11]]))

    jpg = tmp_path / "jpg"
    jpg.mkdir()
    for i, array in enumerate(frames, start=1):
        Image.fromarray(array).save(jpg / f"{i:08d}.jpg", quality=95)
    got = read_frames(jpg, [0, 11], size=16)
    assert got.shape == (2, 3, 16, 20)


# ------------------------------------------------------------------------------- is_video


def test_is_video(tmp_path, tiny_video, tiny_frame_folder):
    assert is_video(tiny_video)
    assert is_video(tiny_frame_folder)
    (tmp_path / "empty").mkdir()
    assert not is_video(tmp_path / "empty")
    (tmp_path / "a.txt").write_text("x")
    assert not is_video(tmp_path / "a.txt")
    assert not is_video(tmp_path / "missing.mp4")
    assert ".mp4" in VIDEO_EXTENSIONS and ".jpg" in IMAGE_EXTENSIONS


# ------------------------------------------------------------------------------- errors


def assert_read_error(path, call, *words):
    with pytest.raises(VideoReadError) as info:
        call()
    message = str(info.value)
    assert str(path) in message
    for word in words:
        assert word in message.lower()
    return message


def test_missing_path(tmp_path):
    path = tmp_path / "nope.mp4"
    assert_read_error(path, lambda: probe_video(path), "no such")
    assert_read_error(path, lambda: read_frames(path, [0]), "no such")


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.mp4"
    path.touch()
    assert_read_error(path, lambda: probe_video(path), "empty")
    assert_read_error(path, lambda: read_frames(path, [0]), "empty")


def test_truncated_file(tmp_path, shared_videos):
    data = (shared_videos / "bikes.mp4").read_bytes()
    path = tmp_path / "half.mp4"
    path.write_bytes(data[: len(data) // 2])
    assert_read_error(path, lambda: probe_video(path), "truncated")
    assert_read_error(path, lambda: read_frames(path, [0]), "truncated")


def test_garbage_bytes(tmp_path):
    path = tmp_path / "garbage.mp4"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    assert_read_error(path, lambda: probe_video(path))
    assert_read_error(path, lambda: read_frames(path, [0, 1]))


def test_no_video_stream(tmp_path):
    path = tmp_path / "audio.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), dtype=np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    assert_read_error(path, lambda: probe_video(path), "no video stream")
    assert_read_error(path, lambda: read_frames(path, [0]), "no video stream")


def test_index_out_of_range(tiny_video, tiny_frame_folder):
    for path in (tiny_video, tiny_frame_folder):
        assert_read_error(path, lambda path=path: read_frames(path, [0, 48]), "out of range", "48")
        assert_read_error(path, lambda path=path: read_frames(path, [-1]), "out of range")


def test_empty_frame_folder_and_broken_image(tmp_path, tiny_frame_folder):
    empty = tmp_path / "empty_clip"
    empty.mkdir()
    assert_read_error(empty, lambda: probe_video(empty), "no images")
    broken = tmp_path / "broken_clip"
    shutil.copytree(tiny_frame_folder, broken)
    (broken / "00000003.png").write_bytes(b"not a png")
    assert read_frames(broken, [0, 1]).shape[0] == 2  # only the needed images are read
    with pytest.raises(VideoReadError, match="00000003.png"):
        read_frames(broken, [2])


def _faststart_cut(tmp_path, frames, keep: float) -> Path:
    """An mp4 with its index at the front (``movflags=faststart``), only the first ``keep`` of its bytes kept."""
    full = tmp_path / "full.mp4"
    with av.open(str(full), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {"x264-params": "keyint=12:bframes=0"}
        for array in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    cut = tmp_path / "cut.mp4"
    data = full.read_bytes()
    cut.write_bytes(data[: int(len(data) * keep)])
    return cut


@pytest.mark.parametrize("keep", [0.3, 0.6])
def test_faststart_file_cut_short_is_damaged(tmp_path, make_frames, keep):
    """The index at the front promises 48 frames the file no longer holds: never a repeated frame."""
    cut = _faststart_cut(tmp_path, make_frames(48, 64, 96), keep)
    assert_read_error(cut, lambda: probe_video(cut), "declares 48 frames", "truncated")
    with av.open(str(cut)) as container:  # what the header states, as a caller with its own info would see it
        stream = container.streams.video[0]
        info = VideoInfo(cut, stream.frames, 25.0, float(stream.duration * stream.time_base), 96, 64)
    assert info.num_frames == 48
    for mode in ("auto", "forward", "seek"):
        message = assert_read_error(
            cut, lambda mode=mode: read_frames(cut, [0, 47], info=info, mode=mode), "declares 48"
        )
        assert "only" in message and "could be decoded" in message


def test_a_frame_past_the_stated_count_is_clamped(tiny_video, decode_all):
    """Metadata one frame off (within the 5 % / 2 frames tolerance) is rounding, not damage."""
    info = dataclasses.replace(probe_video(tiny_video), num_frames=49)
    got = read_frames(tiny_video, [47, 48], info=info)
    assert torch.equal(got[1], got[0]) and torch.equal(got[0], as_chw(decode_all(tiny_video)[-1:])[0])


def test_short_video_repeats_frames(tmp_path, make_frames, write_video):
    """A 1-frame video is legal: every index of a clip is that frame."""
    path = write_video(tmp_path / "one.mp4", make_frames(1, 32, 32))
    assert probe_video(path).num_frames == 1
    clip = read_frames(path, [0, 0, 0])
    assert clip.shape == (3, 3, 32, 32) and torch.equal(clip[0], clip[2])


def test_bad_arguments(tiny_video):
    with pytest.raises(ValueError):
        read_frames(tiny_video, [0], mode="fast")
    with pytest.raises(ValueError):
        read_frames(tiny_video, [0], size=0)
    with pytest.raises(ValueError):
        read_frames(tiny_video, [0], size=(10, 0))
