"""Tests of stsampler.engine.predict: the predictor's support set, inference path and cache, and its output files.

The folder scanning it relies on is tested in tests/data/test_folders.py.
"""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from stsampler.config import config_from_dict
from stsampler.engine import predict as predict_module
from stsampler.engine import train
from stsampler.engine.builder import build_model
from stsampler.engine.predict import Prediction, Predictor, write_predictions
from stsampler.errors import DatasetError, StsamplerError, VideoReadError

M, T, CROP, SHORT, SCAN = 8, 4, 48, 56, 32


def _write_mp4(path: Path, color: tuple[int, int, int], frames: int = 20, seed: int = 0) -> Path:
    """A small H.264 clip: a coloured square moving over noise, 48 x 64 pixels."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(frames):
            image = rng.integers(0, 60, (48, 64, 3), dtype=np.uint8)
            x = 2 * i % 48
            image[12:36, x : x + 16] = color
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _write_frame_folder(folder: Path, color: tuple[int, int, int], frames: int = 12) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(frames):
        image = np.zeros((48, 64, 3), dtype=np.uint8)
        image[10 + i : 30 + i, 20:40] = color
        Image.fromarray(image).save(folder / f"{i + 1:05d}.png")
    return folder


def _support(root: Path, shots: dict[str, int]) -> Path:
    colors = [(250, 30, 30), (30, 250, 30), (30, 30, 250)]
    for c, (name, k) in enumerate(shots.items()):
        for j in range(k):
            _write_mp4(root / name / f"{name}{j}.mp4", colors[c], seed=10 * c + j)
    return root


def _model(head: str = "protonet", kind: str = "learned"):
    cfg = config_from_dict(
        {
            "data": {"split_dir": "unused", "num_frames": M, "crop_size": CROP, "resize_short": SHORT},
            "sampler": {"kind": kind, "num_frames": T, "scanner_pretrained": False, "scan_size": SCAN,
                        "num_samples": 8},
            "model": {"backbone": "smallcnn", "pretrained": False, "head": head},
        }
    )
    torch.manual_seed(0)
    return build_model(cfg, num_train_classes=3)


def _predictor(tmp_path: Path, **kwargs) -> Predictor:
    return Predictor(_model(**kwargs), M, CROP, SHORT, batch_size=2, cache_dir=tmp_path / "cache")


# ------------------------------------------------------------------ support set


def test_unreadable_support_video_is_named(tmp_path: Path) -> None:
    root = _support(tmp_path / "s", {"wave": 1, "jump": 1})
    (root / "jump" / "broken.mp4").write_bytes(b"not a video at all" * 10)
    with pytest.raises(VideoReadError, match=r"broken\.mp4"):
        _predictor(tmp_path).set_support(root)


def test_unbalanced_support_with_trx_head(tmp_path: Path) -> None:
    root = _support(tmp_path / "s", {"wave": 2, "jump": 1})
    with pytest.raises(DatasetError, match="same number of example videos"):
        _predictor(tmp_path, head="trx").set_support(root)


# ------------------------------------------------------------------ output files


def test_write_predictions_json_and_csv(tmp_path: Path) -> None:
    preds = [
        Prediction(Path("a.mp4"), "wave", {"jump": 0.25, "wave": 0.75}, [1, 5]),
        Prediction(Path("b.mp4"), "jump", {"jump": 0.5, "wave": 0.5}, [0, 2]),
    ]
    data = json.loads(write_predictions(preds, tmp_path / "p.json").read_text())
    assert data[0] == {"path": "a.mp4", "label": "wave", "probabilities": {"jump": 0.25, "wave": 0.75},
                       "frame_indices": [1, 5]}
    with open(write_predictions(preds, tmp_path / "p.csv"), newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["path", "label", "p_jump", "p_wave", "frame_indices"]
    assert rows[2][:2] == ["b.mp4", "jump"] and float(rows[2][3]) == 0.5 and rows[2][4] == "0 2"
    with pytest.raises(StsamplerError, match=r"unknown extension.*\.json, \.csv"):
        write_predictions(preds, tmp_path / "p.txt")


# ------------------------------------------------------------------ the predictor


def test_predict_before_support(tmp_path: Path) -> None:
    with pytest.raises(StsamplerError, match="set_support"):
        _predictor(tmp_path).predict([tmp_path])


def test_what_each_source_kind_decodes(tmp_path: Path, monkeypatch) -> None:
    """A video file is decoded once (M frames at full size); a frame folder is read at the scan
    size first, then only the T selected frames at full size."""
    root = _support(tmp_path / "s", {"wave": 1, "jump": 1})
    video = _write_mp4(tmp_path / "q.mp4", (250, 30, 30), frames=30, seed=7)
    folder = _write_frame_folder(tmp_path / "frames", (250, 30, 30), frames=20)
    predictor = _predictor(tmp_path)
    predictor.set_support(root)
    calls = []
    real = predict_module.read_frames

    def spy(path, indices, size=None):
        frames = real(path, indices, size=size)
        calls.append((Path(path), len(indices), min(frames.shape[-2:])))
        return frames

    monkeypatch.setattr(predict_module, "read_frames", spy)
    from_video, from_folder = predictor.predict([video, folder])
    assert sorted(calls, key=str) == sorted(
        [(video, M, SHORT), (folder, M, predictor.scan_transform.resize_short), (folder, T, SHORT)], key=str
    )
    assert predictor.scan_transform.resize_short < SHORT
    for pred, length in ((from_video, 30), (from_folder, 20)):
        assert len(pred.frame_indices) == T and pred.frame_indices == sorted(pred.frame_indices)
        assert all(0 <= i < length for i in pred.frame_indices)
        assert pred.label in ("jump", "wave") and sum(pred.probabilities.values()) == pytest.approx(1.0)
        assert pred.label == max(pred.probabilities, key=pred.probabilities.get)


@pytest.mark.parametrize("kind", ["learned", "uniform"])
def test_queries_do_not_affect_each_other(tmp_path: Path, kind: str) -> None:
    root = _support(tmp_path / "s", {"wave": 1, "jump": 1, "clap": 1})
    queries = [_write_mp4(tmp_path / "q" / f"{i}.mp4", (200, 100 * i % 256, 50), seed=20 + i) for i in range(3)]
    queries.append(_write_frame_folder(tmp_path / "q" / "frames", (0, 200, 200)))
    predictor = _predictor(tmp_path, kind=kind)
    assert predictor.set_support(root) == ["clap", "jump", "wave"]
    together = predictor.predict([tmp_path / "q"])
    assert [p.path for p in together] == sorted(queries)
    for joint in together:
        (alone,) = predictor.predict([joint.path])
        assert alone.frame_indices == joint.frame_indices
        assert alone.probabilities == pytest.approx(joint.probabilities, abs=1e-5)


def _cached_support(tmp_path: Path) -> tuple[Predictor, Path, Path, Prediction]:
    """A predictor that has just cached the embeddings of a two-class support folder, the folder, a query
    and its prediction."""
    root = _support(tmp_path / "s", {"wave": 1, "jump": 1})
    query = _write_mp4(tmp_path / "q.mp4", (250, 30, 30), seed=3)
    first = _predictor(tmp_path)
    first.set_support(root)
    return first, root, query, first.predict([query])[0]


def test_support_cache_is_reused_and_invalidated(tmp_path: Path, monkeypatch) -> None:
    first, root, query, expected = _cached_support(tmp_path)
    caches = list((tmp_path / "cache").glob("*.pt"))
    assert len(caches) == 1

    def no_support_decoding(path, *args, **kwargs):
        raise AssertionError(f"support video {path} decoded despite the cache")

    second = _predictor(tmp_path)
    monkeypatch.setattr(predict_module, "read_frames", no_support_decoding)
    second.set_support(root)
    monkeypatch.undo()
    assert second.predict([query])[0].probabilities == pytest.approx(expected.probabilities, abs=1e-5)

    later = os.stat(root / "wave" / "wave0.mp4").st_mtime_ns + 10**9
    os.utime(root / "wave" / "wave0.mp4", ns=(later, later))
    _predictor(tmp_path).set_support(root)
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 2


def test_damaged_cache_is_recomputed(tmp_path: Path) -> None:
    root = _support(tmp_path / "s", {"wave": 1, "jump": 1})
    predictor = _predictor(tmp_path)
    predictor.set_support(root)
    (cache,) = (tmp_path / "cache").glob("*.pt")
    cache.write_bytes(b"garbage")
    again = _predictor(tmp_path)
    assert again.set_support(root) == ["jump", "wave"]
    assert torch.load(cache, weights_only=True)["classes"] == ["jump", "wave"]


# ------------------------------------------------------------------ end to end


@pytest.mark.slow
@pytest.mark.parametrize("input_size", [None, 24], ids=["decoded-size", "embedded-smaller"])
def test_predict_recovers_trained_actions(
    tiny_config, synth_root: Path, tmp_path: Path, input_size: int | None
) -> None:
    """Train briefly on the synthetic training classes, then label held-out clips of those classes
    against a support folder made of other clips: accuracy must be clearly above chance, also when
    the backbone embeds the amplified frames at a smaller ``model.input_size``.

    The full learned sampler with the parameter-free saliency and few perturbation samples: training
    the paper saliency costs several seconds per episode on 2 CPU cores, too much for a unit test.
    """
    from stsampler.data.splits import SPLIT_FILES, read_split_list

    cfg = tiny_config(
        sampler={"kind": "learned", "saliency": "code", "num_samples": 8},
        model={"input_size": input_size},
        train={"episodes": 8, "tasks_per_batch": 4, "log_every": 4},
    )
    train.train(cfg, tmp_path / "run", progress=False)

    by_class: dict[str, list[str]] = {}
    for class_name, video_id in read_split_list(synth_root / "splits" / SPLIT_FILES["train"]):
        by_class.setdefault(class_name, []).append(video_id)
    support, queries, truth = tmp_path / "support", [], {}
    for class_name in by_class:
        files = sorted((synth_root / "videos" / class_name).glob("*.mp4"))
        (support / class_name).mkdir(parents=True)
        (support / class_name / files[0].name).symlink_to(files[0])
        queries += files[1:]
        truth.update({f: class_name for f in files[1:]})
    predictor = Predictor.from_checkpoint(tmp_path / "run", batch_size=8, cache_dir=tmp_path / "cache")
    embedded_sizes = set()
    predictor.model.backbone.register_forward_pre_hook(lambda _, inputs: embedded_sizes.add(inputs[0].shape[-1]))
    assert predictor.set_support(support) == sorted(by_class)
    predictions = predictor.predict(queries)
    assert embedded_sizes == {input_size or cfg.data.crop_size}
    accuracy = sum(p.label == truth[p.path] for p in predictions) / len(predictions)
    chance = 1 / len(by_class)
    assert len(predictions) == len(queries) >= 12
    assert accuracy >= chance + 0.3, f"accuracy {accuracy:.2f} vs chance {chance:.2f}"


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d.update(embeddings=d["embeddings"][:1]),  # fewer support videos than labels
        lambda d: d.update(embeddings=d["embeddings"][:, :1]),  # another T
        lambda d: d.update(labels=torch.tensor([0, 5])),  # a label beyond the classes
        lambda d: d.update(classes=["jump"]),  # another class list
    ],
    ids=["videos", "frames", "labels", "classes"],
)
def test_a_cache_of_the_wrong_shape_is_recomputed(tmp_path: Path, damage) -> None:
    first, root, query, expected = _cached_support(tmp_path)
    (cache,) = (tmp_path / "cache").glob("*.pt")
    data = torch.load(cache, weights_only=True)
    damage(data)
    torch.save(data, cache)
    again = _predictor(tmp_path)
    assert again.set_support(root) == ["jump", "wave"]
    assert again.predict([query])[0].probabilities == pytest.approx(expected.probabilities, abs=1e-5)
    assert torch.load(cache, weights_only=True)["embeddings"].shape == first.support.embeddings.shape
