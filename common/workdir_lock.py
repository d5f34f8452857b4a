"""One run at a time per WORKDIR: an exclusive ``fcntl.flock`` on WORKDIR/.lock (rule 16).

Why flock and not a pid file: the operating system releases a flock when its process ends, however it ends
(exit, exception, SIGKILL, OOM kill), so a stale lock never blocks anyone and no pid has to be guessed dead.
The file holds JSON ``{"pid", "host", "command", "started"}`` of the holder, only to name it in the error a
second run gets. A holder that was killed leaves that file behind, unlocked: the next run takes it over (and
says so in a warning). A holder that ends normally deletes the file.

Deleting a lock file that others may have opened is racy unless every taker checks, after locking, that the
file it locked is still the one at the path (same inode); ``acquire`` does, and retries otherwise.

flock is local to one host: on a network file system shared by several machines it may not exclude a run on
another machine (the holder's host is recorded so that the error names it where it does).
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import json
import logging
import os
import socket
import sys
from pathlib import Path
from typing import Iterator

from common.errors import UsageError

LOCK_NAME = ".lock"
logger = logging.getLogger("run")


class WorkdirBusy(UsageError):
    """Another run holds the WORKDIR; run.py prints it as one ``error:`` line and exits with 2."""


def _holder(path: Path) -> dict:
    try:
        return json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}


def describe_holder(holder: dict) -> str:
    if not holder.get("pid"):
        return "another process (no record of which)"
    text = f"pid {holder['pid']}"
    if holder.get("host"):
        text += f" on {holder['host']}"
    if holder.get("started"):
        text += f", started {holder['started']}"
    if holder.get("command"):
        text += f": {holder['command']}"
    return text


class WorkdirLock:
    """``with WorkdirLock(workdir): ...`` holds WORKDIR for one run, or raises WorkdirBusy at once."""

    def __init__(self, workdir: Path, command: str | None = None):
        self.workdir = Path(workdir)
        self.path = self.workdir / LOCK_NAME
        self.command = command if command is not None else " ".join(["run.py", *sys.argv[1:]])
        self._fd: int | None = None

    def acquire(self) -> "WorkdirLock":
        for _ in range(100):  # a retry only follows a holder deleting the file between our open and flock
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                os.close(fd)
                if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
                raise WorkdirBusy(f"--workdir {str(self.workdir)!r} is in use by another run "
                                  f"({describe_holder(_holder(self.path))}); wait for it to end or use another "
                                  f"--workdir") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # the previous holder deleted the file we opened: lock the new one instead
                os.close(fd)
                continue
            stale = _holder(self.path)
            if stale.get("pid"):
                logger.warning("%s: taking over the lock of a run that ended without releasing it (%s)",
                               self.workdir, describe_holder(stale))
            record = {"pid": os.getpid(), "host": socket.gethostname(), "command": self.command,
                      "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
            os.ftruncate(fd, 0)
            os.write(fd, (json.dumps(record) + "\n").encode())
            self._fd = fd
            return self
        raise WorkdirBusy(f"--workdir {str(self.workdir)!r}: could not take its lock {str(self.path)!r}")

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # before unlocking: a taker that opened this file sees it gone and retries
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> "WorkdirLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


@contextlib.contextmanager
def locked(workdir: Path, command: str | None = None) -> Iterator[WorkdirLock]:
    lock = WorkdirLock(workdir, command)
    with lock:
        yield lock
