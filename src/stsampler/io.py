"""Atomic file writes: a reader never sees a half-written file and a crash never loses the old one.

Every output path a command will write is checked first (:func:`check_writable`), so a long run
never ends in a lost result; a write that still fails raises :class:`~stsampler.errors.OutputError`
naming the path.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Callable, Sequence

import torch

from stsampler.errors import CheckpointError, OutputError

_TMP_SUFFIX = ".tmp"
_TMP_RANDOM_CHARS = 8  # the length of the random part of a ``tempfile.mkstemp`` name


def _default_file_mode() -> int:
    """The mode ``open()`` would give a new file: 0o666 less the process umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _temporary_prefix(path: Path) -> str:
    return f".{path.name}."


def _is_temporary_of(name: str, path: Path) -> bool:
    """Whether ``name`` is a temporary file :func:`atomic_write` makes for ``path`` (``.<name>.XXXXXXXX.tmp``)."""
    prefix = _temporary_prefix(path)
    return (
        name.startswith(prefix)
        and name.endswith(_TMP_SUFFIX)
        and len(name) == len(prefix) + _TMP_RANDOM_CHARS + len(_TMP_SUFFIX)
    )


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete the temporaries an interrupted :func:`atomic_write` of ``path`` left beside it; returns them."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    stale = [entry for entry in path.parent.iterdir() if _is_temporary_of(entry.name, path)]
    for entry in stale:
        entry.unlink(missing_ok=True)
    return stale


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(f)`` on a temporary file beside ``path``, fsync it, then rename it over ``path``.

    Temporaries of ``path`` left by an interrupted earlier write are removed first. The file gets
    the usual permissions of a new file (not the private 0o600 of a temporary one).

    Raises:
        OutputError: the folder or file cannot be written (the message names ``path``).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path)
        fd, tmp = tempfile.mkstemp(prefix=_temporary_prefix(path), suffix=_TMP_SUFFIX, dir=path.parent)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}; choose another output path") from exc
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _default_file_mode())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}; choose another output path") from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def check_writable(
    path: str | os.PathLike, what: str, folder: bool = False, suffixes: Sequence[str] | None = None
) -> Path:
    """Check, before any work, that ``path`` can be written: a file (or, with ``folder``, a folder)
    there can be created or replaced. Nothing is left behind (missing parent folders stay missing).

    Args:
        path: the output file or folder.
        what: how the user named it, e.g. ``"--out"`` or ``"train --run-dir"``, for the message.
        folder: ``path`` is a folder to create or write into, not a file.
        suffixes: the allowed file extensions (lower case, with the dot), or None for any.

    Raises:
        OutputError: the extension is not allowed, ``path`` is a folder where a file is wanted (or
            the reverse), a parent is a regular file, or the folder cannot be written.
    """
    path = Path(path)
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise OutputError(f"{what} {path}: unknown extension {path.suffix!r}; use one of {', '.join(suffixes)}")
    if path.exists() and path.is_dir() != folder:
        kind = "a folder" if path.is_dir() else "a file"
        raise OutputError(f"{what} {path} is {kind}; give a {'folder' if folder else 'file'} path")
    probe_dir = path if folder and path.is_dir() else path.parent
    while not probe_dir.exists() and probe_dir != probe_dir.parent:
        probe_dir = probe_dir.parent
    if not probe_dir.is_dir():
        raise OutputError(f"{what} {path}: {probe_dir} is a file, not a folder; choose another path")
    try:
        fd, probe = tempfile.mkstemp(prefix=".stsampler-write-check-", dir=probe_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(
            f"{what} {path}: cannot write in {probe_dir} ({exc.strerror or exc}); choose another path"
        ) from exc
    return path


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of the file at ``path``, read in ``chunk``-byte pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def atomic_torch_save(path: str | os.PathLike, obj: Any) -> Path:
    """``torch.save`` to ``path`` atomically."""
    return atomic_write(path, lambda f: torch.save(obj, f))


def load_torch_file(path: str | os.PathLike, what: str) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU, failing with a message that names ``what`` and the file.

    Raises:
        CheckpointError: the file is missing, truncated, corrupt or not a torch file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for truncated or foreign files
        text = str(exc)
        if text.startswith("Weights only load failed"):
            reason = (
                "it is not plain tensors and data, and other pickled objects are never loaded (they could run code)"
            )
        else:
            reason = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        raise CheckpointError(f"{what} {path} is corrupt or not a torch file: {reason}") from exc
