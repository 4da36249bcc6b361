"""``stsampler demo``: the sampler against uniform frames on synthetic actions, on a laptop CPU.

1. Generate a synthetic action dataset: each class is a short, small event (a coloured shape with
   its own motion) at a random time and place over a cluttered moving background.
2. Train ProtoNet on uniformly sampled frames, and ProtoNet with the full learned sampler, on the
   same backbone and episode budget.
3. Evaluate both on the same fixed test episodes: accuracy with a 95% interval, the temporal hit
   rate (selected frames inside the event) and the magnification of the event.
4. Draw what the sampler sees on a few test videos.

Everything lands in one output folder; running the demo again reuses what is already there.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from stsampler.config import Config, config_from_dict, save_config
from stsampler.data.splits import load_split
from stsampler.data.synthetic import SynthConfig, generate_dataset, load_metadata
from stsampler.engine.compare import compare, format_table, results_json
from stsampler.io import atomic_write_text


@dataclass
class DemoConfig:
    """Size of the demo. The defaults take about seven minutes on two CPU cores.

    Attributes:
        classes, videos_per_class, video_frames, size: the synthetic dataset (classes are split
            60/20/20 into disjoint train/val/test sets; the test set needs ``way`` classes).
        dense_frames, selected_frames: M frames scanned, T frames given to the recogniser.
        way, shot: the few-shot task.
        episodes: training episodes per model; eval_episodes: fixed test episodes.
        pictures: test videos drawn by ``show``.
        seed: everything is a function of it.
    """

    classes: int = 25
    videos_per_class: int = 10
    video_frames: int = 48
    size: int = 96
    dense_frames: int = 16
    selected_frames: int = 4
    way: int = 5
    shot: int = 1
    episodes: int = 320
    eval_episodes: int = 300
    pictures: int = 4
    seed: int = 0

    @classmethod
    def quick(cls) -> "DemoConfig":
        """A tiny configuration that runs the whole path in well under a minute (for tests)."""
        return cls(
            classes=15, videos_per_class=4, video_frames=24, size=48, dense_frames=8, selected_frames=3,
            way=3, episodes=8, eval_episodes=6, pictures=1,
        )

    def synth(self) -> SynthConfig:
        return SynthConfig(
            num_classes=self.classes, videos_per_class=self.videos_per_class, num_frames=self.video_frames,
            height=self.size, width=self.size, seed=self.seed,
        )

    def base_config(self, data_dir: Path, workers: int) -> Config:
        """The shared recipe: small CNN from scratch (max-pooled), ProtoNet, AdamW, validation on val classes."""
        return config_from_dict(
            {
                "name": "demo",
                "data": {
                    "split_dir": str(data_dir / "splits"),
                    "data_root": str(data_dir / "videos"),
                    "num_frames": self.dense_frames,
                    "crop_size": self.size,
                    "resize_short": self.size,
                    "flip": True,
                    "workers": workers,
                },
                "sampler": {
                    "num_frames": self.selected_frames,
                    "scanner_pretrained": False,
                    "num_samples": 100,
                    "sigma_every": max(1, self.episodes // 4),
                    "selector_warmup": self.episodes // 4,
                },
                "model": {"backbone": "smallcnn_max", "pretrained": False, "head": "protonet", "aux_weight": 1.0},
                "train": {
                    "way": self.way, "shot": self.shot, "query": 1, "episodes": self.episodes,
                    "tasks_per_batch": 4, "optimizer": "adamw", "lr": 2e-3, "weight_decay": 1e-4,
                    "schedule": "cosine", "warmup": self.episodes // 10, "val_every": self.episodes // 2 or 1,
                    "val_episodes": max(1, self.eval_episodes // 3), "ckpt_every": self.episodes // 2 or 1,
                    "seed": self.seed, "log_every": 5,
                },
                "eval": {"way": self.way, "shot": self.shot, "query": 1, "seed": self.seed},
            },
            source="demo",
        )


VARIANTS = {
    "uniform": ["sampler.kind=uniform"],
    "sampler": ["sampler.kind=learned"],
}


def run_demo(demo: DemoConfig, out: Path, workers: int = 0, progress: bool = True) -> str:
    """Run the demo into ``out`` and return the results table (also in ``out/results.md``).

    ``workers`` are the data-loading processes of training and evaluation.
    """
    out.mkdir(parents=True, exist_ok=True)
    data_dir = out / "data"
    if not (data_dir / "metadata.json").is_file():
        generate_dataset(data_dir, demo.synth(), workers=os.cpu_count() or 1, progress=progress)
    metadata = load_metadata(data_dir)
    base = demo.base_config(data_dir, workers)
    save_config(base, out / "base_config.yaml")
    results = compare(base, VARIANTS, out, demo.eval_episodes, metadata=metadata, progress=progress)
    title = (
        f"{demo.way}-way {demo.shot}-shot on {demo.eval_episodes} fixed test episodes "
        f"(M={demo.dense_frames} scanned, T={demo.selected_frames} used, {demo.episodes} training episodes)"
    )
    table = format_table(results, title)
    atomic_write_text(out / "results.md", table)
    atomic_write_text(out / "results.json", results_json(results))
    pictures = _draw(demo, out, data_dir)
    print("\n" + table)
    print(f"pictures of what the sampler sees: {pictures}")
    return table


def _draw(demo: DemoConfig, out: Path, data_dir: Path) -> Path:
    """Draw the learned sampler's view of a few test videos; returns the HTML page."""
    from stsampler.viz import show

    test = load_split(data_dir / "splits", "test", data_dir / "videos")
    videos = [item.path for item in test.items[:: max(1, len(test.items) // demo.pictures)][: demo.pictures]]
    show(out / "runs" / "sampler", videos, out / "pictures", html=True)
    return out / "pictures" / "index.html"
