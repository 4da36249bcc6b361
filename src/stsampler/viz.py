"""Pictures of what the sampler sees.

:func:`render_sampler_figure` draws one video's pass through a sampler as a single PNG:

1. the M scanned (dense) frames, each titled with its score, the T selected ones outlined, and
   under them a timeline of the scores (selected bars highlighted, the annotated event shaded);
2. the saliency maps of the selected frames overlaid on them (learned samplers with amplification);
3. the frames the recogniser receives (``SamplerOutput.frames``, denormalised): amplified when the
   sampler amplifies, merely selected otherwise.

Rows whose data a sampler does not produce (scores, saliency) are drawn without it, so baseline
samplers get a picture too. The image size is fixed by :data:`FIGSIZE` and :data:`DPI`.

:func:`show` does this for a trained model and a list of videos; :func:`write_html_index` gathers
the images on one HTML page.
"""
from __future__ import annotations

import html as html_lib
import io
import logging
import os
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from stsampler.data.folders import collect_queries  # noqa: E402
from stsampler.data.synthetic import load_metadata  # noqa: E402
from stsampler.data.transforms import denormalize, normalize  # noqa: E402
from stsampler.engine.predict import Predictor  # noqa: E402
from stsampler.engine.runtime import autocast  # noqa: E402
from stsampler.errors import DatasetError  # noqa: E402
from stsampler.io import atomic_write, atomic_write_text  # noqa: E402
from stsampler.samplers.base import SamplerOutput  # noqa: E402

__all__ = ["FIGSIZE", "DPI", "render_sampler_figure", "write_html_index", "show"]

log = logging.getLogger(__name__)

#: Figure size in inches and resolution: every PNG is ``FIGSIZE * DPI`` = 1600 x 900 pixels.
FIGSIZE = (16.0, 9.0)
DPI = 100

_SELECTED = "#d62728"
_OTHER = "#7f7f7f"
_EVENT = "#2ca02c"


def _to_image(frame: torch.Tensor) -> np.ndarray:
    """``[3, H, W]`` (uint8, or float in [0, 1]) -> ``[H, W, 3]`` numpy array for ``imshow``."""
    return frame.detach().cpu().permute(1, 2, 0).numpy()


def _frame_axes(fig: Figure, cell, count: int) -> list:
    """``count`` image axes side by side in one grid cell, without ticks."""
    axes = cell.subgridspec(1, count, wspace=0.05).subplots(squeeze=False)[0]
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    return list(axes)


def _outline(ax, color: str, width: float) -> None:
    for spine in ax.spines.values():
        spine.set_edgecolor(color)
        spine.set_linewidth(width)


def _check_batch_of_one(clip: torch.Tensor, output: SamplerOutput) -> None:
    if clip.dim() != 4 or clip.shape[1] != 3:
        raise ValueError(f"clip must be uint8 [M, 3, H, W], got shape {tuple(clip.shape)}")
    if output.frames.dim() != 5 or output.frames.shape[0] != 1:
        raise ValueError(
            f"output must hold one video (frames [1, T, 3, H, W]), got frames {tuple(output.frames.shape)}"
        )
    if output.indices.shape != output.frames.shape[:2]:
        raise ValueError(
            f"output.indices {tuple(output.indices.shape)} does not match frames {tuple(output.frames.shape)}"
        )


def render_sampler_figure(
    clip: torch.Tensor,
    output: SamplerOutput,
    path: str | os.PathLike,
    title: str = "",
    event_span: tuple[int, int] | None = None,
    frame_numbers: Sequence[int] | torch.Tensor | None = None,
) -> Path:
    """Draw one video's pass through a sampler as a PNG of :data:`FIGSIZE` x :data:`DPI` pixels.

    Args:
        clip: the M dense frames as decoded (after resize / crop, before normalisation),
            uint8 ``[M, 3, H, W]``.
        output: the sampler's output for this one video (batch of one): ``frames [1, T, 3, H', W']``,
            ``indices [1, T]`` (dense-frame indices 0..M-1), optional ``scores [1, M]`` and
            ``saliency [1, T, h, w]``.
        path: where to write the PNG (atomically).
        title: the figure's title.
        event_span: ``(start, end)`` frame numbers of the annotated action, end exclusive (as in
            the synthetic data's metadata), in the units of ``frame_numbers``; the dense frames
            inside it are shaded on the timeline.
        frame_numbers: the video frame number of each dense frame, ``[M]``; defaults to 0..M-1.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    _check_batch_of_one(clip, output)
    num_dense = clip.shape[0]
    selected = output.indices[0].detach().cpu()
    numbers = (
        torch.arange(num_dense)
        if frame_numbers is None
        else torch.as_tensor(frame_numbers).detach().cpu().reshape(-1)
    )
    if numbers.numel() != num_dense:
        raise ValueError(f"frame_numbers has {numbers.numel()} entries for {num_dense} dense frames")
    is_selected = torch.zeros(num_dense, dtype=torch.bool)
    is_selected[selected] = True
    scores = None if output.scores is None else output.scores[0].detach().float().cpu()
    clip = clip.detach().cpu()

    fig = plt.figure(figsize=FIGSIZE, dpi=DPI)
    try:
        rows = fig.add_gridspec(4, 1, height_ratios=[1.0, 0.45, 1.35, 1.35], hspace=0.35,
                                left=0.04, right=0.99, top=0.9, bottom=0.02)
        _draw_scanned(fig, rows[0], clip, numbers, scores, is_selected)
        _draw_timeline(fig.add_subplot(rows[1]), numbers, scores, is_selected, event_span)
        _draw_saliency(fig, rows[2], clip[selected], output.saliency)
        _draw_received(fig, rows[3], output)
        fig.suptitle(title)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=DPI)
    finally:
        plt.close(fig)
    return atomic_write(path, lambda f: f.write(buffer.getvalue()))


def _draw_scanned(
    fig: Figure,
    cell,
    clip: torch.Tensor,
    numbers: torch.Tensor,
    scores: torch.Tensor | None,
    is_selected: torch.Tensor,
) -> None:
    """Row 1: every dense frame, titled with its frame number and score, selected ones outlined."""
    for i, ax in enumerate(_frame_axes(fig, cell, clip.shape[0])):
        ax.imshow(_to_image(clip[i]))
        label = f"#{int(numbers[i])}" if scores is None else f"#{int(numbers[i])}\n{float(scores[i]):.2f}"
        chosen = bool(is_selected[i])
        ax.set_title(label, fontsize=7, color=_SELECTED if chosen else "black")
        _outline(ax, _SELECTED if chosen else _OTHER, 3.0 if chosen else 0.5)


def _draw_timeline(
    ax,
    numbers: torch.Tensor,
    scores: torch.Tensor | None,
    is_selected: torch.Tensor,
    event_span: tuple[int, int] | None,
) -> None:
    """Row 1b: the score of each dense frame (or just the selection when there are no scores)."""
    positions = torch.arange(numbers.numel())
    heights = scores if scores is not None else is_selected.float()
    colors = [_SELECTED if s else _OTHER for s in is_selected.tolist()]
    ax.bar(positions.numpy(), heights.numpy(), color=colors, width=0.8)
    if event_span is not None:
        start, end = event_span
        inside = positions[(numbers >= start) & (numbers < end)]
        if inside.numel():
            ax.axvspan(float(inside.min()) - 0.5, float(inside.max()) + 0.5, color=_EVENT, alpha=0.2,
                       zorder=0, label=f"event (frames {start}..{end - 1})")
            ax.legend(loc="upper right", fontsize=7)
    ax.set_xlim(-0.5, numbers.numel() - 0.5)
    ax.set_ylim(0.0, 1.05)
    ax.set_xticks(positions.numpy())
    ax.set_xticklabels([str(int(n)) for n in numbers], fontsize=6)
    ax.set_ylabel("score" if scores is not None else "selected", fontsize=8)
    ax.tick_params(axis="y", labelsize=7)


def _draw_saliency(fig: Figure, cell, selected: torch.Tensor, saliency: torch.Tensor | None) -> None:
    """Row 2: the selected dense frames with their saliency map on top (when there is one)."""
    axes = _frame_axes(fig, cell, selected.shape[0])
    height, width = selected.shape[-2:]
    maps = None if saliency is None else saliency[0].detach().float().cpu()
    for t, ax in enumerate(axes):
        ax.imshow(_to_image(selected[t]))
        if maps is not None:
            ax.imshow(maps[t].numpy(), cmap="jet", alpha=0.45, interpolation="bilinear",
                      extent=(-0.5, width - 0.5, height - 0.5, -0.5))
    axes[0].set_ylabel("saliency" if maps is not None else "selected", fontsize=9)


def _draw_received(fig: Figure, cell, output: SamplerOutput) -> None:
    """Row 3: what the recogniser receives, denormalised to [0, 1]."""
    frames = denormalize(output.frames[0].detach().float().cpu()).clamp(0.0, 1.0)
    axes = _frame_axes(fig, cell, frames.shape[0])
    for t, ax in enumerate(axes):
        ax.imshow(_to_image(frames[t]))
    axes[0].set_ylabel("amplified" if output.grid is not None or output.saliency is not None else "to recogniser",
                       fontsize=9)


def write_html_index(
    images: Sequence[str | os.PathLike], out: str | os.PathLike, title: str = "stsampler"
) -> Path:
    """One HTML page showing ``images`` in order, linked relative to the page's folder.

    Args:
        images: PNG paths (anywhere; links are made relative to ``out``'s folder).
        out: the HTML file to write (atomically).
        title: the page title.

    Returns:
        ``out`` as a :class:`~pathlib.Path`.
    """
    out = Path(out)
    base = out.parent.resolve()
    sections = []
    for image in images:
        link = Path(os.path.relpath(Path(image).resolve(), base)).as_posix()
        name = html_lib.escape(Path(image).stem)
        href = html_lib.escape(link, quote=True)
        sections.append(
            f'<section><h2>{name}</h2><a href="{href}"><img src="{href}" alt="{name}" '
            f'style="max-width:100%"></a></section>'
        )
    page = (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
        f"<title>{html_lib.escape(title)}</title></head>\n<body>\n<h1>{html_lib.escape(title)}</h1>\n"
        + "\n".join(sections)
        + "\n</body></html>\n"
    )
    return atomic_write_text(out, page)


def show(
    run_dir_or_checkpoint: str | os.PathLike,
    videos: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    html: bool = True,
    support_dir: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
) -> list[Path]:
    """Draw what a trained model's sampler sees in each video: ``out_dir/<video stem>.png``.

    Each video's M dense frames (segment centres) are decoded with the test transform and sampled
    in evaluation mode. A task-adaptive sampler adapts to ``support_dir`` (a support folder as for
    ``stsampler predict``; the figure title then also gives the predicted action); without one,
    each video serves as its own one-video support set, which the title says. Videos of a synthetic
    dataset (:mod:`stsampler.data.synthetic`) get their annotated event shaded on the timeline
    (see :func:`synthetic_event_span`).

    Args:
        run_dir_or_checkpoint: a run directory or checkpoint file.
        videos: video files, frame folders, or folders searched recursively.
        out_dir: where the PNGs (and ``index.html``) go.
        html: also write ``out_dir/index.html`` showing every image.
        support_dir: optional support folder (one sub-folder of examples per action).
        device: where the model runs.

    Returns:
        The PNG paths, in video order (plus the HTML page last when ``html``).
    """
    out_dir = Path(out_dir)
    predictor = Predictor.from_checkpoint(run_dir_or_checkpoint, device=device)
    sampler = predictor.model.sampler
    adaptive = predictor.learned and sampler.task_learner is not None
    task = None
    if support_dir is not None:
        predictor.set_support(support_dir)
        task = predictor.support.task
    images: list[Path] = []
    foreign_metadata: set[Path] = set()
    for video in collect_queries(videos):
        numbers = predictor.dense_frame_numbers(video)
        clip = predictor.decode(video, numbers)
        title = f"{video.name}: {type(sampler).__name__}"
        with torch.inference_mode(), autocast(predictor.device, predictor.amp):
            clips = normalize(clip.to(predictor.device))[None]
            if predictor.learned:
                is_support = torch.tensor([task is None], device=predictor.device)
                output = sampler(clips, is_support, task=task)
            else:
                output = sampler(clips, torch.zeros(1, dtype=torch.bool, device=predictor.device))
        if adaptive and task is None:
            title += " (adapted to the video itself: no support folder given)"
        if support_dir is not None:
            (prediction,) = predictor.predict([video])
            title += f", predicted {prediction.label!r} ({prediction.probabilities[prediction.label]:.2f})"
        span = synthetic_event_span(video, foreign_metadata)
        path = _unique_png(out_dir, video, images)
        images.append(render_sampler_figure(clip, output, path, title, event_span=span, frame_numbers=numbers))
    if html:
        page_title = f"stsampler show: {run_dir_or_checkpoint}"
        return images + [write_html_index(images, out_dir / "index.html", title=page_title)]
    return images


def _our_metadata(path: Path) -> dict | None:
    """The synthetic dataset metadata at ``path`` if stsampler wrote it (a JSON object with a
    ``config`` object, a ``classes`` list and a ``videos`` object), else None."""
    try:
        data = load_metadata(path)
    except DatasetError:
        return None
    if not isinstance(data, dict):
        return None
    kinds = {"config": dict, "classes": list, "videos": dict}
    return data if all(isinstance(data.get(key), kind) for key, kind in kinds.items()) else None


def synthetic_event_span(video: Path, warned: set[Path] | None = None) -> tuple[int, int] | None:
    """The annotated event ``(start, end)`` (end exclusive) of a video of a synthetic dataset
    (``<root>/videos/<class>/<id>.mp4`` beside ``<root>/metadata.json``), else None.

    A ``metadata.json`` that stsampler did not write (a common file name in users' datasets) is not
    read: the video gets no event, and a warning names the file once (files already in ``warned``
    are not named again; the file is added to it).
    """
    if len(video.parents) < 3 or video.parents[1].name != "videos":
        return None
    path = video.parents[2] / "metadata.json"
    if not path.is_file():
        return None
    metadata = _our_metadata(path)
    entry = None if metadata is None else metadata["videos"].get(f"{video.parent.name}/{video.stem}")
    if isinstance(entry, dict) and all(isinstance(entry.get(k), int) for k in ("event_start", "event_end")):
        return entry["event_start"], entry["event_end"]
    if metadata is None and (warned is None or path not in warned):
        log.warning("%s was not written by stsampler's synthetic data generator: drawing without event marks", path)
        if warned is not None:
            warned.add(path)
    return None


def _unique_png(out_dir: Path, video: Path, taken: Sequence[Path]) -> Path:
    """``out_dir/<stem>.png``, or ``<stem>-2.png``... when another video of this call took the name."""
    path, n = out_dir / f"{video.stem}.png", 1
    while path in taken:
        n += 1
        path = out_dir / f"{video.stem}-{n}.png"
    return path
