"""Synthetic action videos where the class lives in a short, small event.

Each class is an EVENT: an object with a class-specific shape, colour and motion that appears
only for a short span (by default 10-20 % of the frames, at a random time) and covers a small part
of the frame (at most ``event_area`` of it, or a range from ``event_area_min``), at a random
place. Everything else carries no class information: a drifting smooth random texture seen through
a panning camera, and distractor objects that move during the whole video with shapes (ring, bar)
and colours (cyan, magenta, white) that no class uses. Frames sampled uniformly miss much of the
event; this is the data a learned frame sampler is for.

Classes combine 4 shapes x 4 colours x 4 motions (64 distinct classes at most); class ``c`` is
chosen so that the first classes differ in every attribute.

Layout written by :func:`generate_dataset`::

    out/videos/<class>/<video_id>.mp4      H.264 (libx264), or the fallback encoder recorded in metadata
    out/splits/{trainlist03,vallist03,testlist03}.txt   class-disjoint, the field's format
    out/metadata.json                      config, classes, per-video event span and boxes

Everything is a deterministic function of the seed (per video: ``(seed, class, video)``), so
videos and metadata do not depend on ``workers``.
"""
from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import av
import numpy as np
from tqdm import tqdm

from stsampler.data.splits import SPLIT_FILES, split_class_names, write_split_list
from stsampler.errors import DatasetError
from stsampler.io import atomic_write, atomic_write_json

__all__ = [
    "SynthConfig",
    "ClassDesign",
    "ClipSpec",
    "MAX_CLASSES",
    "class_design",
    "class_name",
    "sample_clip",
    "render_clip",
    "event_boxes",
    "box_side_range",
    "pick_encoder",
    "generate_dataset",
    "load_metadata",
]

SHAPES = ("disc", "square", "triangle", "cross")
COLOURS = {"red": (230, 40, 40), "green": (40, 200, 60), "blue": (40, 70, 240), "yellow": (240, 220, 30)}
MOTIONS = ("right", "down", "grow", "orbit")
DISTRACTOR_SHAPES = ("ring", "bar")
DISTRACTOR_COLOURS = ((40, 220, 230), (220, 50, 220), (245, 245, 245))
#: Side of each class shape's box in units of its half-size (see :func:`_shape_mask`).
SHAPE_EXTENT = {"disc": 2.0, "square": 1.7, "triangle": 1.9, "cross": 2.0}
MAX_CLASSES = len(SHAPES) * len(COLOURS) * len(MOTIONS)
_ENCODERS = ("libx264", "libopenh264", "mpeg4")
_BACKGROUND_WAVES = 8


@dataclass
class SynthConfig:
    """What to generate.

    Attributes:
        num_classes: number of event classes (3 to :data:`MAX_CLASSES`).
        videos_per_class: videos per class.
        num_frames, fps, height, width: clip format (height and width even, for yuv420p).
        event_fraction: (min, max) event length as a fraction of the video, drawn per video.
        event_area: the largest fraction of the frame the event object's box may cover.
        event_area_min: None (default) draws the object's half-size between 70 % and 100 % of the
            largest that ``event_area`` allows, the same for every shape (the box then covers about
            35-100 % of ``event_area``, less for the square and the triangle, which fill less of
            their unit box); the default datasets are made this way. A number makes the box of
            the object at its full size cover between ``event_area_min`` and ``event_area`` of the
            frame: its side is drawn uniformly between ``sqrt(event_area_min * H * W) + 1`` and
            ``sqrt(event_area * H * W) - 1`` pixels (:func:`box_side_range`) for every shape, and
            rasterisation moves a side by at most one pixel, so the box stays within the range
            (the triangle's width can fall one pixel short of the smallest side: its widest row
            lies between pixel rows). The ``grow`` motion starts the object at 45 % of that side
            and reaches it in the last event frame.
        distractors: distractor objects per video.
        seed: everything is a deterministic function of it.
        split_fractions: train/val/test fractions of the classes (class-disjoint).
    """

    num_classes: int = 10
    videos_per_class: int = 20
    num_frames: int = 64
    fps: int = 16
    height: int = 112
    width: int = 112
    event_fraction: tuple[float, float] = (0.1, 0.2)
    event_area: float = 0.1
    event_area_min: float | None = None
    distractors: int = 3
    seed: int = 0
    split_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)

    def validate(self) -> None:
        """Raise :class:`DatasetError` naming the first bad field."""
        lo, hi = self.event_fraction
        checks = [
            (3 <= self.num_classes <= MAX_CLASSES, f"num_classes must be 3..{MAX_CLASSES} (disjoint splits)"),
            (self.videos_per_class >= 1, "videos_per_class must be >= 1"),
            (self.num_frames >= 4 and self.fps >= 1, "num_frames must be >= 4 and fps >= 1"),
            (self.height >= 16 and self.width >= 16, "height and width must be >= 16"),
            (self.height % 2 == 0 and self.width % 2 == 0, "height and width must be even (yuv420p)"),
            (0 < lo <= hi <= 1, "event_fraction must satisfy 0 < min <= max <= 1"),
            (0 < self.event_area <= 0.5, "event_area must be in (0, 0.5]"),
            (
                self.event_area_min is None or 0 < self.event_area_min <= self.event_area,
                "event_area_min must satisfy 0 < event_area_min <= event_area",
            ),
            (self.distractors >= 0, "distractors must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise DatasetError(f"synthetic dataset config: {message} (got {self})")
        if self.event_area_min is not None:
            low, high = box_side_range(self)
            if low > high:
                raise DatasetError(
                    f"synthetic dataset config: event_area_min={self.event_area_min} and event_area="
                    f"{self.event_area} ask for box sides of {low - 1:.1f} to {high + 1:.1f} pixels at "
                    f"{self.height}x{self.width}; rasterisation needs the range to span two pixels of side: widen it"
                )


def box_side_range(config: SynthConfig) -> tuple[float, float]:
    """(smallest, largest) side in pixels the event object's box is drawn with at full size when
    ``config.event_area_min`` is set, each a pixel inside the requested areas' sides: rasterisation
    moves a side by up to one pixel."""
    frame = config.height * config.width
    return float(np.sqrt(config.event_area_min * frame) + 1.0), float(np.sqrt(config.event_area * frame) - 1.0)


@dataclass(frozen=True)
class ClassDesign:
    """The event of one class: shape, colour name and motion."""

    shape: str
    colour: str
    motion: str


def class_design(index: int) -> ClassDesign:
    """The design of class ``index``: with ``index = a + 4b + 16d`` the shape is ``a``, the colour
    ``(a + b) % 4`` and the motion ``(a + 2b + d) % 4``, a bijection on 0..63 where consecutive
    classes differ in shape, colour and motion."""
    if not 0 <= index < MAX_CLASSES:
        raise DatasetError(f"class index {index} outside 0..{MAX_CLASSES - 1}")
    a, b, d = index % 4, (index // 4) % 4, index // 16
    return ClassDesign(SHAPES[a], list(COLOURS)[(a + b) % 4], MOTIONS[(a + 2 * b + d) % 4])


def class_name(index: int) -> str:
    """Folder name of class ``index``, e.g. ``"c00_red_disc_right"``."""
    design = class_design(index)
    return f"c{index:02d}_{design.colour}_{design.shape}_{design.motion}"


@dataclass(frozen=True)
class ClipSpec:
    """Every random choice behind one clip (what :func:`render_clip` needs besides the config).

    Positions are in pixels; ``size`` is the half-extent of a shape's unit square.
    """

    class_index: int
    event_start: int
    event_end: int
    centre: tuple[float, float]
    size: float
    brightness: float
    background: dict
    distractors: tuple[dict, ...]


def sample_clip(config: SynthConfig, class_index: int, video_index: int) -> ClipSpec:
    """Draw the random choices of video ``video_index`` of class ``class_index`` (seeded by
    ``(config.seed, class_index, video_index)``)."""
    rng = np.random.default_rng([config.seed, class_index, video_index])
    t, h, w = config.num_frames, config.height, config.width
    length = int(round(rng.uniform(*config.event_fraction) * t))
    length = min(max(length, 2), t)
    start = int(rng.integers(0, t - length + 1))
    # A shape of half-size s covers at most 2s + 1 pixels per side: keep (2s + 1)^2 <= area.
    half_max = max(0.5 * (np.sqrt(config.event_area * h * w) - 1.0), 1.0)
    if config.event_area_min is None:
        size = float(rng.uniform(0.7, 1.0) * half_max)
    else:  # one draw either way, so the later draws do not depend on the mode
        size = float(rng.uniform(*box_side_range(config)) / SHAPE_EXTENT[class_design(class_index).shape])
    # The motions move the centre by at most 1.2 * size, so the object stays in the frame.
    margin_x, margin_y = min(2.2 * size, w / 2), min(2.2 * size, h / 2)
    centre = (float(rng.uniform(margin_x, w - margin_x)), float(rng.uniform(margin_y, h - margin_y)))
    background = {
        "base": rng.uniform(70, 150, size=3).tolist(),
        "amp": rng.uniform(8, 22, size=(_BACKGROUND_WAVES, 3)).tolist(),
        "freq": (
            rng.uniform(0.04, 0.35, size=(_BACKGROUND_WAVES, 2)) * rng.choice([-1, 1], size=(_BACKGROUND_WAVES, 2))
        ).tolist(),
        "phase": rng.uniform(0, 2 * np.pi, size=_BACKGROUND_WAVES).tolist(),
        "drift": rng.uniform(-0.3, 0.3, size=_BACKGROUND_WAVES).tolist(),
        "pan": (rng.uniform(-1.0, 1.0, size=2)).tolist(),
    }
    distractors = tuple(
        {
            "shape": DISTRACTOR_SHAPES[int(rng.integers(len(DISTRACTOR_SHAPES)))],
            "colour": list(DISTRACTOR_COLOURS[int(rng.integers(len(DISTRACTOR_COLOURS)))]),
            "size": float(rng.uniform(0.6, 1.0) * half_max),
            "start": [float(rng.uniform(0, w)), float(rng.uniform(0, h))],
            "velocity": rng.uniform(-1.5, 1.5, size=2).tolist(),
        }
        for _ in range(config.distractors)
    )
    return ClipSpec(
        class_index, start, start + length, centre, size, float(rng.uniform(0.85, 1.0)), background, distractors
    )


def _shape_mask(shape: str, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Boolean mask of a unit shape from offsets in shape units (``|dx|, |dy| <= 1`` box)."""
    if shape == "disc":
        return dx**2 + dy**2 <= 1.0
    if shape == "square":
        return np.maximum(np.abs(dx), np.abs(dy)) <= 0.85
    if shape == "triangle":
        return (dy <= 0.9) & (np.abs(dx) * 2.0 <= dy + 1.0)
    if shape == "cross":
        return ((np.abs(dx) <= 0.3) & (np.abs(dy) <= 1.0)) | ((np.abs(dy) <= 0.3) & (np.abs(dx) <= 1.0))
    if shape == "ring":
        r2 = dx**2 + dy**2
        return (r2 <= 1.0) & (r2 >= 0.45)
    if shape == "bar":
        return (np.abs(dx) <= 1.0) & (np.abs(dy) <= 0.25)
    raise ValueError(f"unknown shape {shape!r}")


def _event_track(spec: ClipSpec, motion: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per event frame: centre x, centre y and half-size, each float ``[L]``."""
    length = spec.event_end - spec.event_start
    u = np.linspace(0.0, 1.0, length)
    cx = np.full(length, spec.centre[0])
    cy = np.full(length, spec.centre[1])
    size = np.full(length, spec.size)
    if motion == "right":
        cx = cx + (u - 0.5) * 2.4 * spec.size
    elif motion == "down":
        cy = cy + (u - 0.5) * 2.4 * spec.size
    elif motion == "grow":
        size = size * (0.45 + 0.55 * u)
    elif motion == "orbit":
        angle = 2 * np.pi * u
        cx = cx + 1.1 * spec.size * np.cos(angle)
        cy = cy + 1.1 * spec.size * np.sin(angle)
    return cx, cy, size


def _masks(shape: str, cx: np.ndarray, cy: np.ndarray, size: np.ndarray, h: int, w: int) -> np.ndarray:
    """Masks bool ``[L, h, w]`` of a shape at per-frame centres and half-sizes (each ``[L]``)."""
    ys = np.arange(h, dtype=np.float32)[None, :, None] + 0.5
    xs = np.arange(w, dtype=np.float32)[None, None, :] + 0.5
    s = size.astype(np.float32)[:, None, None]
    dx = (xs - cx.astype(np.float32)[:, None, None]) / s
    dy = (ys - cy.astype(np.float32)[:, None, None]) / s
    return _shape_mask(shape, dx, dy)


def _background(spec: ClipSpec, t: int, h: int, w: int) -> np.ndarray:
    """Drifting smooth texture under a panning camera, float32 ``[t, h, w, 3]``.

    A sum of K plane waves ``amp_k sin(fx_k x + fy_k y + phase_k + drift_k t)`` in camera
    coordinates shifted by the pan. ``sin(A + B) = sin A cos B + cos A sin B`` splits each wave
    into an x part ``[t, w]`` and a y part ``[t, h]``, so the whole texture is one batched matrix
    product ``[t, h, 2K] @ [t, 2K, w * 3]``.
    """
    bg = spec.background
    frames = np.arange(t, dtype=np.float32)[:, None, None]
    pan_x, pan_y = bg["pan"]
    freq = np.asarray(bg["freq"], dtype=np.float32)
    amp = np.asarray(bg["amp"], dtype=np.float32)
    offset = np.asarray(bg["phase"], dtype=np.float32) + np.asarray(bg["drift"], dtype=np.float32) * frames[..., 0]
    xs = np.arange(w, dtype=np.float32)[None, :, None] + pan_x * frames
    ys = np.arange(h, dtype=np.float32)[None, :, None] + pan_y * frames
    a = freq[:, 0] * xs + offset[:, None, :]
    b = freq[:, 1] * ys
    y_part = np.concatenate([np.cos(b), np.sin(b)], axis=2)
    x_part = np.concatenate([np.sin(a), np.cos(a)], axis=2)
    x_part = (x_part.transpose(0, 2, 1)[..., None] * np.concatenate([amp, amp])[None, :, None, :])
    texture = y_part @ x_part.reshape(t, 2 * len(amp), w * 3)
    return texture.reshape(t, h, w, 3) + np.asarray(bg["base"], dtype=np.float32)


def render_clip(spec: ClipSpec, config: SynthConfig, event: bool = True) -> np.ndarray:
    """Render a clip, uint8 ``[T, H, W, 3]`` (RGB); ``event=False`` leaves the event out (same
    background and distractors), for checking what the event changes."""
    t, h, w = config.num_frames, config.height, config.width
    frames = _background(spec, t, h, w)
    steps = np.arange(t, dtype=np.float64)
    for d in spec.distractors:
        cx = np.mod(d["start"][0] + d["velocity"][0] * steps, w)
        cy = np.mod(d["start"][1] + d["velocity"][1] * steps, h)
        mask = _masks(d["shape"], cx, cy, np.full(t, d["size"]), h, w)
        frames[mask] = np.asarray(d["colour"], dtype=np.float32)
    if event:
        design = class_design(spec.class_index)
        mask = _masks(design.shape, *_event_track(spec, design.motion), h, w)
        colour = np.asarray(COLOURS[design.colour], dtype=np.float32) * spec.brightness
        span = frames[spec.event_start : spec.event_end]
        span[mask] = colour
    return np.clip(frames, 0, 255).astype(np.uint8)


def event_boxes(spec: ClipSpec, config: SynthConfig) -> list[list[int]]:
    """Per event frame, the object's pixel box ``[x0, y0, x1, y1]`` (x1, y1 exclusive)."""
    design = class_design(spec.class_index)
    mask = _masks(design.shape, *_event_track(spec, design.motion), config.height, config.width)
    rows, cols = mask.any(axis=2), mask.any(axis=1)
    y0, x0 = rows.argmax(axis=1), cols.argmax(axis=1)
    y1 = config.height - rows[:, ::-1].argmax(axis=1)
    x1 = config.width - cols[:, ::-1].argmax(axis=1)
    return np.stack([x0, y0, x1, y1], axis=1).tolist()


def pick_encoder() -> str:
    """The first encoder PyAV offers among libx264, libopenh264 and mpeg4."""
    for name in _ENCODERS:
        try:
            av.codec.Codec(name, "w")
            return name
        except Exception:  # PyAV raises codec-specific errors for an unknown encoder
            continue
    raise DatasetError(f"PyAV offers none of the encoders {', '.join(_ENCODERS)}; install a full PyAV wheel")


def _encode(path: Path, frames: np.ndarray, fps: int, encoder: str) -> None:
    """Write RGB frames uint8 ``[T, H, W, 3]`` as an mp4, atomically (single-threaded encoder, so
    the bytes are a deterministic function of the frames)."""

    def write(f) -> None:
        with av.open(f, mode="w", format="mp4") as container:
            stream = container.add_stream(encoder, rate=fps)
            stream.width, stream.height = frames.shape[2], frames.shape[1]
            stream.pix_fmt = "yuv420p"
            stream.thread_count = 1
            if encoder == "libx264":
                # Constant QP, one thread: x264's CRF rate control and its threads make the
                # bitstream vary from run to run; this setting does not.
                stream.options = {"qp": "20", "preset": "veryfast", "x264-params": "threads=1:lookahead-threads=1"}
            for frame in frames:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            container.mux(stream.encode(None))

    atomic_write(path, write)


def _make_video(job: tuple[SynthConfig, int, int, Path, str]) -> tuple[str, dict]:
    config, class_index, video_index, videos_dir, encoder = job
    spec = sample_clip(config, class_index, video_index)
    name, video_id = class_name(class_index), f"v{video_index:04d}"
    _encode(videos_dir / name / f"{video_id}.mp4", render_clip(spec, config), config.fps, encoder)
    return f"{name}/{video_id}", {
        "class": name,
        "label": class_index,
        "num_frames": config.num_frames,
        "fps": config.fps,
        "width": config.width,
        "height": config.height,
        "event_start": spec.event_start,
        "event_end": spec.event_end,
        "boxes": event_boxes(spec, config),
    }


def generate_dataset(out: str | os.PathLike, config: SynthConfig, workers: int = 1, progress: bool = True) -> Path:
    """Write the synthetic dataset under ``out`` (see the module docstring); returns ``out``."""
    config.validate()
    out = Path(out)
    encoder = pick_encoder()
    names = [class_name(c) for c in range(config.num_classes)]
    jobs = [
        (config, c, v, out / "videos", encoder)
        for c in range(config.num_classes)
        for v in range(config.videos_per_class)
    ]
    bar = tqdm(total=len(jobs), desc="synthetic videos", unit="video", disable=not progress)
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = []
            for result in pool.map(_make_video, jobs, chunksize=4):
                results.append(result)
                bar.update()
    else:
        results = []
        for job in jobs:
            results.append(_make_video(job))
            bar.update()
    bar.close()
    videos = dict(results)
    parts = split_class_names(names, config.seed, config.split_fractions)
    for split, file_name in SPLIT_FILES.items():
        entries = [tuple(key.split("/", 1)) for key in videos if videos[key]["class"] in parts[split]]
        write_split_list(out / "splits" / file_name, entries)
    atomic_write_json(
        out / "metadata.json",
        {"config": asdict(config), "encoder": encoder, "classes": names, "videos": videos},
    )
    return out


def load_metadata(out: str | os.PathLike) -> dict:
    """Read the metadata written by :func:`generate_dataset`: ``out`` is its folder or the JSON file."""
    path = Path(out)
    if path.is_dir():
        path = path / "metadata.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read synthetic metadata {path}: {exc}; regenerate the dataset") from exc
