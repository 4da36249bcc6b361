"""``stsampler demo``: the sampler against uniform frames on synthetic actions, on a laptop CPU.

1. Generate a synthetic action dataset: each class is a short, small event (a coloured shape with
   its own motion) at a random time and place over a cluttered moving background.
2. Train the shipped recipe ``synthetic/sampler`` (ProtoNet with the full learned sampler) and the
   same recipe on uniformly sampled frames, on the same backbone and episode budget, with
   ``seeds`` training seeds each (:func:`stsampler.engine.compare.compare`).
3. Test all runs on the same fixed test episodes: accuracy with its seed spread and 95% interval,
   the paired difference of the sampler against uniform frames, the temporal hit rate (selected
   frames inside the event) and the magnification of the event.
4. Write ``compare.md``, ``compare.json`` and ``report.html`` (with what the sampler sees on the
   test videos where the two disagree most).

The recipe is used as shipped except for the named size overrides of :meth:`DemoConfig.overrides`.
Everything lands in one output folder; running the demo again reuses what is already there.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from stsampler.config import Config, load_config, save_config
from stsampler.data.synthetic import SynthConfig, generate_dataset
from stsampler.engine.report import REPORT, compare_and_report

RECIPE = "synthetic/sampler"
VARIANTS = {
    "uniform": ["sampler.kind=uniform"],
    "sampler": [],
}
#: Recipe keys counted in training episodes, scaled with ``DemoConfig.episodes``.
_SCHEDULE_KEYS = (
    "train.warmup", "train.val_every", "train.ckpt_every", "sampler.sigma_every", "sampler.selector_warmup",
)


@dataclass
class DemoConfig:
    """Size of the demo; the training recipe is ``synthetic/sampler``.

    The defaults are the recipe's own budget (320 training episodes, 100 validation and 300 test
    episodes) on the dataset the recipe is written for.

    Attributes:
        classes, videos_per_class, video_frames, size: the synthetic dataset (classes are split
            60/20/20 into disjoint train/val/test sets; the test set needs ``way`` classes).
        way, shot: the few-shot task (the recipe's 5-way unless the test split holds fewer classes).
        episodes: training episodes per run (the recipe's schedule is scaled to it);
            val_episodes: validation episodes; eval_episodes: fixed test episodes.
        seeds: training seeds per model (two by default: the table's seed min-max column is then a
            measured spread, and the demo stays within 10 minutes on 2 CPU cores).
        pictures: test videos drawn in the report.
        seed: the dataset and the test episodes are a function of it.
    """

    classes: int = 25
    videos_per_class: int = 10
    video_frames: int = 48
    size: int = 96
    way: int = 5
    shot: int = 1
    episodes: int = 320
    val_episodes: int = 100
    eval_episodes: int = 300
    seeds: int = 2
    pictures: int = 3
    seed: int = 0

    @classmethod
    def quick(cls) -> "DemoConfig":
        """A tiny configuration that runs the whole path in well under a minute (for tests)."""
        return cls(
            classes=15, videos_per_class=4, video_frames=32, size=64, way=3, episodes=8, val_episodes=2,
            eval_episodes=6, seeds=1, pictures=1,
        )

    def synth(self) -> SynthConfig:
        return SynthConfig(
            num_classes=self.classes, videos_per_class=self.videos_per_class, num_frames=self.video_frames,
            height=self.size, width=self.size, seed=self.seed,
        )

    def overrides(self, recipe: Config, data_dir: Path, workers: int) -> list[str]:
        """What the demo changes in ``recipe``: where its data is (``data.metadata`` lets the oracle sampler
        run on it), the task and the training budget, with the recipe's schedule scaled to it."""
        scale = self.episodes / recipe.train.episodes
        schedule = []
        for key in _SCHEDULE_KEYS:
            section, name = key.split(".")
            value = getattr(getattr(recipe, section), name)
            schedule.append(f"{key}={max(1 if name.endswith('every') else 0, round(value * scale))}")
        return [
            f"data.split_dir={data_dir / 'splits'}",
            f"data.data_root={data_dir / 'videos'}",
            f"data.metadata={data_dir / 'metadata.json'}",
            f"data.workers={workers}",
            f"train.way={self.way}",
            f"train.shot={self.shot}",
            f"train.episodes={self.episodes}",
            f"train.val_episodes={self.val_episodes}",
            f"eval.seed={self.seed}",
            *schedule,
        ]

    def base_config(self, data_dir: Path, workers: int) -> Config:
        """``synthetic/sampler`` with :meth:`overrides`."""
        return load_config(RECIPE, self.overrides(load_config(RECIPE), data_dir, workers))


def run_demo(
    demo: DemoConfig, out: Path, workers: int = 0, progress: bool = True, command: str = "stsampler demo",
    jobs: int = 1, threads: int | None = None,
) -> str:
    """Run the demo into ``out`` and return the results table (also in ``out/compare.md``).

    ``workers`` are the data-loading processes of training and evaluation; ``command`` is the command
    line recorded in ``compare.md`` to regenerate it; ``jobs`` runs train side by side with ``threads``
    threads each (:func:`stsampler.engine.compare.run_side_by_side`).
    """
    out.mkdir(parents=True, exist_ok=True)
    data_dir = out / "data"
    if not (data_dir / "metadata.json").is_file():
        generate_dataset(data_dir, demo.synth(), workers=os.cpu_count() or 1, progress=progress)
    base = demo.base_config(data_dir, workers)
    save_config(base, out / "base_config.yaml")
    _, table = compare_and_report(
        base, VARIANTS, out, demo.eval_episodes, demo.seeds, command, pictures=demo.pictures, progress=progress,
        jobs=jobs, threads=threads,
    )
    print("\n" + table)
    if demo.seeds == 1:
        print(
            "Each row is one training seed: its seed spread is not measured here. On this recipe rows move by "
            "several points between seeds (benchmarks/results/synthetic_ablation.md); without --seeds the demo "
            "trains two seeds per row, with `--seeds 3` three, and fills the seed min-max column."
        )
    print(f"report with plots and pictures of what the sampler sees: {out / REPORT}")
    print(f"regenerate with: {command}")
    return table
