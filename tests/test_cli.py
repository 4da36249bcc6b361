"""The stsampler command: help, one-line errors without a traceback, and real subcommands."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from stsampler.cli import build_parser, main
from stsampler.config import Config, config_from_dict, config_to_dict, save_config
from stsampler.data.synthetic import SynthConfig, generate_dataset
from stsampler.engine.builder import build_model
from stsampler.engine.checkpoint import save_checkpoint
from stsampler.errors import OutputError


def _tiny_config(root: Path) -> Config:
    """A 2-way 2-shot CPU-sized run over ``root`` (a synthetic set), 3 evaluation episodes."""
    return config_from_dict({
        "name": "cli",
        "data": {"split_dir": str(root / "splits"), "data_root": str(root / "videos"), "num_frames": 4,
                 "crop_size": 32, "resize_short": 32, "workers": 0},
        "sampler": {"kind": "uniform", "num_frames": 2},
        "model": {"backbone": "smallcnn", "pretrained": False, "head": "protonet"},
        "train": {"way": 2, "shot": 2, "query": 1, "episodes": 4, "tasks_per_batch": 2, "optimizer": "adamw",
                  "amp": "none", "device": "cpu", "val_episodes": 0, "log_every": 1},
        "eval": {"query": 1, "episodes": 3},
    })


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(config YAML, run folder with an untrained checkpoint) over 6 classes x 4 videos, 2/2/2 classes."""
    root = tmp_path_factory.mktemp("cli")
    generate_dataset(root / "synth", SynthConfig(num_classes=6, videos_per_class=4, num_frames=8, height=32,
                                                 width=32, split_fractions=(0.34, 0.33, 0.33)), workers=1,
                     progress=False)
    cfg = _tiny_config(root / "synth")
    torch.manual_seed(0)
    save_checkpoint(root / "run" / "checkpoints" / "last.pt",
                    {"config": config_to_dict(cfg), "num_train_classes": 2, "model": build_model(cfg, 2).state_dict()})
    return save_config(cfg, root / "cli.yaml"), root / "run"


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for command in ("demo", "compare", "report", "configs", "synth", "splits", "extract", "train", "eval", "show",
                    "predict"):
        assert command in text


def test_bad_input_is_one_message_and_exit_code_2(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("trian:\n  episodes: 10\n")
    assert main(["train", str(config)]) == 2
    err = capsys.readouterr().err
    assert "trian" in err and "train" in err
    assert "Traceback" not in err


def test_missing_checkpoint_names_the_path(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert main(["eval", str(missing), "--episodes", "1"]) == 2
    assert str(missing) in capsys.readouterr().err


def test_synth_writes_a_dataset(tmp_path, capsys):
    out = tmp_path / "synth"
    args = ["--classes", "3", "--videos-per-class", "1", "--frames", "8", "--size", "32", "--workers", "1"]
    assert main(["synth", str(out), *args]) == 0
    assert (out / "metadata.json").is_file()
    assert len(list((out / "videos").rglob("*.mp4"))) == 3
    assert "3 videos" in capsys.readouterr().out


def test_overrides_reach_train():
    args = build_parser().parse_args(["train", "c.yaml", "train.shot=5", "sampler.kind=uniform", "--resume"])
    assert args.overrides == ["train.shot=5", "sampler.kind=uniform"] and args.resume


def test_overrides_may_follow_the_options(tiny_run, capsys):
    _, run = tiny_run
    assert main(["eval", str(run), "--episodes", "2", "data.workers=0"]) == 0
    assert "over 2 episodes" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", str(run), "--episodes", "2", "--no-such-flag"])
    assert exit_info.value.code == 2 and "--no-such-flag" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # for compare, a trailing override could be read two ways: refused
        main(["compare", "synthetic/uniform", "--variant", "a", "--out", "x", "train.seed=1"])


def test_eval_uses_the_runs_way_and_shot_and_says_so(tiny_run, capsys):
    _, run = tiny_run
    assert main(["eval", str(run)]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out[: out.rindex("}") + 1])
    assert (summary["way"], summary["shot"], summary["query"], summary["num_episodes"]) == (2, 2, 1, 3)
    assert "over 3 episodes, 2-way 2-shot, 1 query per class" in out


@pytest.mark.parametrize("flag, value", [("--way", "1"), ("--shot", "0"), ("--query", "0")])
def test_eval_refuses_an_empty_episode(tiny_run, capsys, flag, value):
    _, run = tiny_run
    assert main(["eval", str(run), flag, value]) == 2
    err = capsys.readouterr().err
    assert f"{flag} (eval.{flag[2:]}) must be >=" in err and "Traceback" not in err


def test_eval_prints_the_summary_before_writing_and_a_failed_write_is_one_line(tiny_run, tmp_path, capsys, monkeypatch):
    _, run = tiny_run
    out = tmp_path / "eval.json"

    def refuse(path, obj):
        raise OutputError(f"cannot write {path}: No space left on device; choose another output path")

    monkeypatch.setattr("stsampler.io.atomic_write_json", refuse)
    assert main(["eval", str(run), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert '"accuracy"' in captured.out and "over 3 episodes" in captured.out
    (error,) = [line for line in captured.err.splitlines() if "error" in line]
    assert error.startswith("stsampler eval: error: cannot write") and str(out) in error
    assert "Traceback" not in captured.err


def test_eval_warns_about_substituted_videos_and_records_them(tiny_run, tmp_path, capsys, monkeypatch):
    from stsampler.engine import runtime

    _, run = tiny_run
    original = runtime.collate_episode

    def collate(items, shot):  # report the first video of each episode as a stand-in for its class-mate
        batch = original(items, shot)
        batch["requested"] = batch["indices"].clone()
        batch["requested"][0] = batch["indices"][1]
        return batch

    monkeypatch.setattr(runtime, "collate_episode", collate)
    out = tmp_path / "eval.json"
    assert main(["eval", str(run), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "warning: 3 time(s) an unreadable video was replaced" in err and str(out) in err
    saved = json.loads(out.read_text())
    assert saved["num_substitutions"] == 3 and sum(e["count"] for e in saved["substitutions"]) == 3


def test_train_says_on_the_command_line_when_episodes_are_rounded_up(tiny_run, tmp_path, capsys):
    config, _ = tiny_run
    assert main(["train", str(config), "train.episodes=3", "--run-dir", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert "train.episodes=3 is not a multiple of train.tasks_per_batch=2" in err and "4 episodes" in err
    assert json.loads((tmp_path / "run" / "results.json").read_text())["episodes"] == 4


@pytest.mark.parametrize(
    "argv, seeds", [([], 2), (["--quick"], 1), (["--seeds", "3"], 3), (["--quick", "--seeds", "2"], 2)]
)
def test_demo_trains_two_seeds_unless_quick_or_told(monkeypatch, tmp_path, argv, seeds):
    import stsampler.demo

    called = {}
    monkeypatch.setattr(stsampler.demo, "run_demo", lambda demo, out, workers, command, jobs, threads: called.update(
        seeds=demo.seeds, command=command))
    assert main(["demo", "--out", str(tmp_path), *argv]) == 0
    assert called["seeds"] == seeds and f"--seeds {seeds}" in called["command"]


@pytest.mark.parametrize("argv, words", [([], ""), (["--jobs", "2", "--threads", "1"], " --jobs 2 --threads 1")])
def test_demo_passes_and_records_runs_side_by_side(monkeypatch, tmp_path, argv, words):
    import stsampler.demo

    called = {}
    monkeypatch.setattr(stsampler.demo, "run_demo", lambda demo, out, workers, command, jobs, threads: called.update(
        command=command, jobs=jobs, threads=threads))
    assert main(["demo", "--out", str(tmp_path), *argv]) == 0
    assert called["command"].endswith(f"--workers 0{words}")
    assert (called["jobs"], called["threads"]) == ((2, 1) if argv else (1, None))
