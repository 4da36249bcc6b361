"""Fault family "bad configs": each mistake ends ``stsampler train`` with one line naming the key or
file, exit status 2, nothing executed and no run folder."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stsampler.cli import main

GOOD = {"name": "faulty", "data": {"split_dir": "splits"}, "train": {"episodes": 10}}


def _with(section: str, key: str, value) -> str:
    values = {**GOOD, section: {**GOOD.get(section, {}), key: value}}
    return yaml.safe_dump(values)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        pytest.param(_with("train", "lr_rate", 0.1), "train.lr_rate", id="unknown-key"),
        pytest.param(_with("train", "way", "five"), "train.way", id="wrong-type"),
        pytest.param(_with("train", "lr", -1), "train.lr", id="out-of-range"),
        pytest.param(_with("sampler", "max_zoom", 0), "sampler.max_zoom", id="out-of-range-sampler"),
        pytest.param(_with("sampler", "pe_scale", 0.5), "sampler.experimental.pe_scale", id="moved-key"),
        pytest.param("data: [split_dir: splits\ntrain: {lr: 0.1\n", "bad.yaml", id="malformed-yaml"),
        pytest.param("data: !!python/object/apply:builtins.open ['{pwned}', 'w']\n", "bad.yaml",
                     id="python-object-tag"),
    ],
)
def test_a_bad_config_is_one_clear_line(
    text: str, named: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    pwned = tmp_path / "pwned"
    config = tmp_path / "bad.yaml"
    config.write_text(text.replace("{pwned}", str(pwned)), encoding="utf-8")

    code = main(["train", str(config), "--run-dir", str(tmp_path / "run")])

    err = capsys.readouterr().err
    assert code == 2
    assert named in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists() and not (tmp_path / "runs").exists()
    assert not pwned.exists(), "a YAML tag ran Python code"
