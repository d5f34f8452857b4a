"""A fresh run works apart and replaces the finished run in WORKDIR only when it succeeds (DESIGN rule 16).

Layout under WORKDIR:
  .staging/            this run's folder: the steps get it as their ``workdir`` and write everything there
                       (checkpoints/, backup/, logs/, export/, samples/, plots, results.json). A killed run leaves
                       it behind with its backup/, and the same command resumes there.
  .staging/data -> ../data   (and cache, downloads, features, bench): links to WORKDIR's shared, write-once
                       folders (synthetic data written once per parameters, image-feature caches, downloads, bench
                       caches). They are not part of a run, so they are shared by every run and never swapped.
  .previous/           only during the swap: the finished run's entries, moved aside.
  .previous.done/      only at the swap's end: the old run, being deleted (the new one is in place).

The swap (``commit``): every top-level entry of the finished run (all but the shared folders and these control
names) is renamed into .previous/, every staged entry renamed into WORKDIR, .previous renamed to .previous.done
and deleted. Each step is a rename within one file system. ``recover`` (run before anything else by the next
run that holds the lock) finishes a swap cut short: .previous.done → delete it (the new run was in place);
.previous → move the entries already swapped in back into .staging and the finished run's back into WORKDIR.

A ``--set seeds=...`` series stages as one run: its seed-N folders (each an ordinary run folder, staged within) and
its aggregate results.json are swapped in together, so a failed series leaves the finished one as it was.

A run without the train step (``--steps evaluate,export``, or a bench) first gets the finished run's entries in its
staging folder as hard links (a copy where links are impossible): evaluate and export read the checkpoints from there,
and every file the suite writes is written whole to a temporary name and renamed over its target
(common.io), which never changes the linked original.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

STAGING = ".staging"
PREVIOUS = ".previous"
DONE = ".previous.done"
SHARED = ("data", "cache", "downloads", "features", "bench")
CONTROL = (".lock", STAGING, PREVIOUS, DONE)

logger = logging.getLogger("run")


def run_entries(folder: Path) -> list[Path]:
    """The entries of a run in ``folder`` (WORKDIR or its staging folder): all but shared folders and control
    names."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name not in SHARED and p.name not in CONTROL)


def resumable(folder: Path) -> bool:
    backup = folder / "backup"
    return backup.is_dir() and any(backup.iterdir())


def recover(workdir: Path) -> None:
    """Finishes or undoes a swap that a crash cut short (see the module docstring)."""
    done, previous, staging = workdir / DONE, workdir / PREVIOUS, workdir / STAGING
    if done.exists():
        shutil.rmtree(done)
    if previous.exists():
        logger.warning("%s: a run was stopped while replacing the finished run; restoring the finished run",
                       workdir)
        staging.mkdir(exist_ok=True)
        for entry in run_entries(workdir):  # what had been swapped in already goes back to the staging folder
            target = staging / entry.name
            if target.exists() or target.is_symlink():
                _remove(target)
            os.replace(entry, target)
        for entry in previous.iterdir():
            os.replace(entry, workdir / entry.name)
        previous.rmdir()


def _remove(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        path.unlink()
    else:
        shutil.rmtree(path)


def _link_tree(source: Path, target: Path) -> None:
    if source.is_symlink():
        os.symlink(os.readlink(source), target)
    elif source.is_dir():
        target.mkdir()
        for entry in source.iterdir():
            _link_tree(entry, target / entry.name)
    else:
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)


class Staging:
    """One run's staging folder in WORKDIR: ``prepare`` it, run the steps in ``folder``, then ``commit`` or
    ``abandon``."""

    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self.folder = self.workdir / STAGING

    @property
    def has_finished_run(self) -> bool:
        return bool(run_entries(self.workdir))

    def prepare(self, train: bool, series: bool = False) -> Path:
        """Makes the staging folder: kept as it is when a train step finds an interrupted run's state there
        (prepare_run then resumes it or starts afresh), else emptied; without train, seeded with the finished
        run's entries. A ``series`` (``--set seeds=...``) stages its seed-N folders here, each an ordinary run
        folder with its own staging: an interrupted series keeps them. Returns the folder the steps write to."""
        recover(self.workdir)
        if series:
            keep = train and self.folder.is_dir() and any(p.name.startswith("seed-") for p in self.folder.iterdir())
        else:
            keep = train and resumable(self.folder)
        if self.folder.exists() and not keep:
            shutil.rmtree(self.folder)
        self.folder.mkdir(exist_ok=True)
        if not keep and (not train or resumable(self.workdir)):
            # Without train: evaluate/export read the finished run's checkpoints. A train step finding the
            # backup of a run interrupted before runs were staged resumes it from a copy (copied, not linked:
            # training appends to its log and rewrites the backup in place).
            for entry in run_entries(self.workdir):
                if train:
                    (shutil.copytree if entry.is_dir() else shutil.copy2)(entry, self.folder / entry.name)
                else:
                    _link_tree(entry, self.folder / entry.name)
        for name in SHARED:
            shared, link = self.workdir / name, self.folder / name
            shared.mkdir(exist_ok=True)
            if link.is_symlink() or link.exists():
                _remove(link)
            os.symlink(Path("..") / name, link)
        return self.folder

    def _drop_links(self) -> None:
        for name in SHARED:
            link = self.folder / name
            if link.is_symlink():
                link.unlink()
        for name in SHARED:  # empty shared folders (made for the links, or left by a killed run) go
            shared = self.workdir / name
            if shared.is_dir() and not shared.is_symlink() and not any(shared.iterdir()):
                shared.rmdir()

    def commit(self) -> None:
        """Replaces the finished run in WORKDIR with the staged one, all entries together."""
        self._drop_links()
        previous = self.workdir / PREVIOUS
        previous.mkdir()
        for entry in run_entries(self.workdir):
            os.replace(entry, previous / entry.name)
        for entry in run_entries(self.folder):
            os.replace(entry, self.workdir / entry.name)
        _fsync_directory(self.workdir)
        os.replace(previous, self.workdir / DONE)
        shutil.rmtree(self.workdir / DONE)
        shutil.rmtree(self.folder)

    def abandon(self, keep: bool = True) -> bool:
        """After a failure: WORKDIR's finished run is untouched. With ``keep`` (a train step ran) the staging
        folder stays when it holds anything worth keeping (an interrupted run's state to resume, a failed run's
        logs), else it goes. Returns whether it stayed."""
        self._drop_links()
        if not self.folder.is_dir():
            return False
        kept = keep and any(p.is_file() and p.relative_to(self.folder).as_posix() != "checkpoints/run.json"
                            for p in self.folder.rglob("*"))
        if not kept:
            shutil.rmtree(self.folder)
        return kept

    def final_path(self, value):
        """``value`` (results.json's dict, a path, a string) with the staging folder's path replaced by WORKDIR's."""
        staged, final = str(self.folder), str(self.workdir)
        if isinstance(value, Path):
            return Path(self.final_path(str(value)))
        if isinstance(value, str):
            return value.replace(staged + os.sep, final + os.sep) if value != staged else final
        if isinstance(value, dict):
            return {key: self.final_path(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.final_path(item) for item in value)
        return value


def as_final(folder: Path, value):
    """``value`` with ``folder``'s path replaced by its WORKDIR's where ``folder`` is a staging folder."""
    folder = Path(folder)
    return Staging(folder.parent).final_path(value) if folder.name == STAGING else value


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
