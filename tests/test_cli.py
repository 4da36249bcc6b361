"""The stsampler command: help, one-line errors without a traceback, and a real subcommand."""
from __future__ import annotations

import pytest

from stsampler.cli import build_parser, main


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for command in ("demo", "synth", "splits", "extract", "train", "eval", "show", "predict"):
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
    assert main(["synth", str(out), "--classes", "3", "--videos-per-class", "1", "--frames", "8", "--size", "32", "--workers", "1"]) == 0
    assert (out / "metadata.json").is_file()
    assert len(list((out / "videos").rglob("*.mp4"))) == 3
    assert "3 videos" in capsys.readouterr().out


def test_overrides_reach_train():
    args = build_parser().parse_args(["train", "c.yaml", "train.shot=5", "sampler.kind=uniform", "--resume"])
    assert args.overrides == ["train.shot=5", "sampler.kind=uniform"] and args.resume
