"""Atomic writes: the whole file or the old one, with ordinary permissions."""
from __future__ import annotations

import json
import os

import pytest
import torch

from stsampler.errors import OutputError, StsamplerError
from stsampler.io import atomic_torch_save, atomic_write, atomic_write_json, atomic_write_text, check_writable


def test_written_files_have_the_permissions_of_a_new_file(tmp_path):
    umask = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "a.txt", "hello")
    finally:
        os.umask(umask)
    assert path.read_text() == "hello"
    assert path.stat().st_mode & 0o777 == 0o644


def test_json_and_torch_round_trip(tmp_path):
    atomic_write_json(tmp_path / "r.json", {"a": [1, 2]})
    assert json.loads((tmp_path / "r.json").read_text()) == {"a": [1, 2]}
    atomic_torch_save(tmp_path / "t.pt", {"w": torch.arange(3)})
    assert torch.equal(torch.load(tmp_path / "t.pt", weights_only=True)["w"], torch.arange(3))


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = atomic_write_text(tmp_path / "keep.txt", "old")

    def fail(f):
        f.write(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(path, fail)
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_stale_temporaries_of_the_target_are_removed_and_no_others(tmp_path):
    stale = [tmp_path / ".results.json.abcd1234.tmp", tmp_path / ".results.json.x_y9ZZZZ.tmp"]
    kept = [
        tmp_path / ".results.json.other.json.abcd1234.tmp",  # a temporary of another target
        tmp_path / ".config.yaml.abcd1234.tmp",
        tmp_path / "results.json.tmp",
    ]
    for path in stale + kept:
        path.write_text("partial")
    atomic_write_json(tmp_path / "results.json", {"ok": True})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["results.json", *(p.name for p in kept)])


def test_a_write_the_system_refuses_is_an_output_error_naming_the_path(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    target = blocker / "out.json"
    with pytest.raises(OutputError, match=str(target)) as info:
        atomic_write_json(target, {})
    assert isinstance(info.value, OSError) and isinstance(info.value, StsamplerError)


@pytest.mark.parametrize(
    "relative, kwargs, message",
    [
        ("a_file/out.json", {}, "is a file, not a folder"),
        ("a_file/deeper/run", {"folder": True}, "is a file, not a folder"),
        ("a_dir", {}, "is a folder; give a file path"),
        ("a_file", {"folder": True}, "is a file; give a folder path"),
        ("out.txt", {"suffixes": (".json", ".csv")}, "unknown extension '.txt'"),
    ],
)
def test_check_writable_refuses_with_the_path_and_the_reason(tmp_path, relative, kwargs, message):
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "a_dir").mkdir()
    with pytest.raises(OutputError, match=message) as info:
        check_writable(tmp_path / relative, "--out", **kwargs)
    assert str(tmp_path / relative) in str(info.value) and "--out" in str(info.value)


def test_check_writable_accepts_new_paths_and_leaves_nothing_behind(tmp_path):
    assert check_writable(tmp_path / "new" / "deeper" / "r.json", "--out") == tmp_path / "new" / "deeper" / "r.json"
    check_writable(tmp_path / "run", "--run-dir", folder=True)
    (tmp_path / "old.CSV").write_text("x")
    check_writable(tmp_path / "old.CSV", "--out", suffixes=(".json", ".csv"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.CSV"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_check_writable_refuses_a_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="cannot write in"):
            check_writable(folder / "r.json", "--out")
    finally:
        folder.chmod(0o700)
