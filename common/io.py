"""Atomic file and folder writes: a reader sees the old version or the new one, never half of one.

Everything the suite leaves behind (results.json, predictions, checkpoints, SavedModels, plots) goes
through these helpers: write to a temporary sibling, flush to disk, then ``os.replace`` it over the
target, which POSIX guarantees to be atomic within one file system.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yields a temporary file path next to ``target``; on success it replaces ``target``.

    On any exception the temporary file is removed and ``target`` is left untouched.
    ``suffix`` keeps the extension for writers that insist on one (``model.save`` wants ``.keras``).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".tmp{suffix}", dir=target.parent)
    os.close(fd)
    temporary_path = Path(temporary)
    try:
        yield temporary_path
        # mkstemp creates 0600 files; give the result the mode a plain open() would (0666 & ~umask).
        os.chmod(temporary_path, 0o666 & ~_umask())
        with open(temporary_path, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary_path, target)
        _fsync_directory(target.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary_path.unlink()


def atomic_write_bytes(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as temporary:
        temporary.write_bytes(data)


def atomic_write_text(target: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(target, text.encode("utf-8"))


def _json_default(value: Any) -> Any:
    # NumPy scalars and arrays appear in metrics dictionaries; write them as plain JSON.
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _finite(value: Any) -> Any:
    # JSON has no NaN/Infinity; write null so every JSON reader accepts the file.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def atomic_write_json(target: str | os.PathLike, payload: Any) -> None:
    text = json.dumps(_finite(json.loads(json.dumps(payload, default=_json_default))), indent=2, sort_keys=False)
    atomic_write_text(target, text + "\n")


def atomic_directory(target: str | os.PathLike, write: Callable[[Path], None]) -> None:
    """Calls ``write(temporary_dir)`` and then swaps the finished folder into ``target``.

    A folder cannot be replaced in one system call when the target exists, so the old one is first
    renamed aside (one rename), the new one renamed in (one rename), and only then the old removed:
    at every moment either a complete old or a complete new folder sits at ``target``'s path or its
    ``.old`` sibling.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    # A writer killed mid-way leaves its temporary folder behind; the next writer of the same target
    # removes it (one writer per target at a time is how the suite writes).
    for stale in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        write(temporary)
        previous = target.with_name(f".{target.name}.old")
        if previous.exists():
            shutil.rmtree(previous)
        if target.exists():
            os.replace(target, previous)
        os.replace(temporary, target)
        _fsync_directory(target.parent)
        if previous.exists():
            shutil.rmtree(previous)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary, ignore_errors=True)


def describe_missing_path(path: str | os.PathLike) -> str:
    """Why ``path`` cannot be opened, as words to follow it in an error: ``f"--data-dir {path!r} {reason}"``.

    ``Path.exists()`` is False alike for a missing path, a symbolic-link loop and a broken link; this tells them
    apart: "does not exist", "is a symbolic-link loop", "is a broken symbolic link (points to 'X')", and for a
    folder on the way that fails, e.g. "is unreachable: 'a/b' is a symbolic-link loop" or "does not exist ('a' is
    a file, not a folder)". Returns "exists" when the path does exist.
    """
    path = Path(path)
    if os.path.exists(path):
        return "exists"
    # The first component, from the root down, that cannot be followed says why.
    parts = path.parts
    for depth in range(1, len(parts) + 1):
        prefix = Path(*parts[:depth])
        try:
            os.stat(prefix)
            continue
        except OSError as error:
            code = error.errno
        if code == errno.ENOTDIR:
            return f"does not exist ({str(Path(*parts[:depth - 1]))!r} is a file, not a folder)"
        if code == errno.ELOOP:
            reason = "is a symbolic-link loop"
        elif code == errno.EACCES:
            reason = "cannot be reached (permission denied)"
        elif os.path.islink(prefix):
            reason = f"is a broken symbolic link (points to {os.readlink(prefix)!r})"
        else:
            return "does not exist"
        return reason if depth == len(parts) else f"is unreachable: {str(prefix)!r} {reason}"
    return "does not exist"
