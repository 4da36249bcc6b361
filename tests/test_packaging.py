"""The wheel built from the repository carries everything a non-editable install needs."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from stsampler.config import RECIPES_DIR

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_contains_every_recipe(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
            "-w", str(tmp_path), str(ROOT),
        ],
        check=True, cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("stsampler-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {f"stsampler/configs/{p.relative_to(RECIPES_DIR).as_posix()}" for p in RECIPES_DIR.rglob("*.yaml")}
    assert shipped and shipped <= names, sorted(shipped - names)
    assert "stsampler/data/checksums.json" in names
