"""A WORKDIR is a transaction (DESIGN rule 16): one run at a time holds it (a lock), a resume matches config and
data, and a fresh run stages its files and replaces the finished run's only when it succeeds."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, run_cli

# --- the lock -------------------------------------------------------------------------------------------------------
_HOLDER = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, sys.argv[1])
    from common.workdir_lock import WorkdirLock
    lock = WorkdirLock(sys.argv[2], command="run.py acceleration --workdir held").acquire()
    print("locked", flush=True)
    time.sleep(120)
    """
)


def _hold_in_another_process(workdir: Path) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(ROOT), str(workdir)], stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_a_second_run_on_a_locked_workdir_is_refused_naming_the_holder(tmp_path):
    holder = _hold_in_another_process(tmp_path)
    try:
        result = run_cli("acceleration", "--preset", "tiny", "--workdir", str(tmp_path), timeout=120)
        assert result.returncode == 2, result.stderr[-3000:]
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "is in use by another run" in errors[0], result.stderr[-3000:]
        assert f"pid {holder.pid}" in errors[0] and "run.py acceleration --workdir held" in errors[0]
        assert str(tmp_path) in errors[0] and "started 20" in errors[0]
        assert "Traceback" not in result.stderr
        assert sorted(p.name for p in tmp_path.iterdir()) == [".lock"]  # the refused run wrote nothing
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_left_by_a_killed_run_is_taken_over_with_a_warning(tmp_path, caplog):
    from common.workdir_lock import WorkdirLock

    holder = _hold_in_another_process(tmp_path)
    holder.kill()  # SIGKILL: no release; the .lock file stays, naming a dead pid
    holder.wait()
    assert json.loads((tmp_path / ".lock").read_text())["pid"] == holder.pid
    with caplog.at_level("WARNING"):
        lock = WorkdirLock(tmp_path, command="second").acquire()
    try:
        assert f"taking over the lock of a run that ended without releasing it (pid {holder.pid}" in caplog.text
        assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()
        with pytest.raises(Exception, match=f"in use by another run \\(pid {os.getpid()}.*: second\\)"):
            WorkdirLock(tmp_path).acquire()  # held now, also against this process's other opens
    finally:
        lock.release()
    assert not (tmp_path / ".lock").exists()
    WorkdirLock(tmp_path).acquire().release()  # free again


def test_the_lock_is_released_after_a_failed_run(tmp_path):
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros(10))
    workdir = tmp_path / "run"
    workdir.mkdir()
    (workdir / "keep.txt").write_text("x")
    result = run_cli("acceleration", "--preset", "tiny", "--data-dir", str(bad), "--workdir", str(workdir))
    assert result.returncode == 2 and "bad.npy" in result.stderr
    assert not (workdir / ".lock").exists()


# --- a resume matches the data too ----------------------------------------------------------------------------------
def _signal_files(folder: Path) -> tuple[Path, Path]:
    """Two different recordings of the tiny preset's length (the synthetic vibration, and it scaled)."""
    from tasks.acceleration.task import TASK

    task = TASK(TASK.Config.from_preset("tiny"))
    signal = task.load_data(None, folder / "synthetic").recordings[0]
    source = next((folder / "synthetic" / "data").glob("*.npz"))
    values = np.load(source)["DE"].astype(np.float64)
    first, second = folder / "first.npy", folder / "second.npy"
    np.save(first, values)
    np.save(second, values * 1.5 + 0.1)
    assert signal is not None
    return first, second


def _interrupted(workdir: Path) -> None:
    (workdir / "backup").mkdir(exist_ok=True)
    (workdir / "backup" / "training_metadata.json").write_text("{}")  # what a killed run leaves behind


def test_a_resume_with_other_data_starts_afresh_and_says_why(tmp_path, caplog):
    from common import training
    from tasks.acceleration.task import TASK

    first, second = _signal_files(tmp_path)
    workdir = tmp_path / "run"
    task = TASK(TASK.Config.from_preset("tiny"))
    _, resumed = training.fitted_preprocessor(task, task.load_data(first, workdir), workdir, first)
    assert not resumed
    _interrupted(workdir)
    with caplog.at_level("INFO"):  # same data, same config: resumes
        _, resumed = training.fitted_preprocessor(task, task.load_data(first, workdir), workdir, first)
    assert resumed and "Resuming the interrupted run" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):  # another recording: starts afresh, naming old and new data
        _, resumed = training.fitted_preprocessor(task, task.load_data(second, workdir), workdir, second)
    assert not resumed and not (workdir / "backup").exists()
    assert "holds an interrupted run with other data" in caplog.text
    assert f"data: {str(first)!r} → {str(second)!r}" in caplog.text
    assert "starting afresh instead of resuming it" in caplog.text
    # The same path with other contents (a recording overwritten in place) is other data too.
    _interrupted(workdir)
    np.save(second, np.load(second) * 2)
    caplog.clear()
    with caplog.at_level("WARNING"):
        _, resumed = training.fitted_preprocessor(task, task.load_data(second, workdir), workdir, second)
    assert not resumed and f"data {str(second)!r} changed since: {str(second)!r} (file," in caplog.text


def test_the_data_identity_digests_files_and_folders():
    from common.training import data_identity

    here = Path(__file__)
    identity = data_identity({"path": str(here), "files": {"a": {"path": str(here.parent / "conftest.py")}}})
    assert identity["data_dir"] is None and sorted(identity["files"]) == sorted(
        [str(here.resolve()), str((here.parent / "conftest.py").resolve())])
    assert identity["files"][str(here.resolve())].startswith(f"file, {here.stat().st_size} bytes, sha256 ")
    folder = data_identity({}, here.parent)
    assert folder["data_dir"] == [str(here.parent.resolve())]
    assert folder["files"][str(here.parent.resolve())].startswith("folder, ")
    assert data_identity({"path": "not/a/file"}) == {"data_dir": None, "files": {}}


# --- a fresh run stages its work ------------------------------------------------------------------------------------
def _tree(folder: Path) -> dict[str, str]:
    """Every file of the finished run (not the control entries) → its sha256: the run's bytes."""
    tree = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if relative.parts[0] in (".lock", ".staging"):
            continue
        tree[str(relative)] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return tree


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished tiny acceleration run (train, evaluate, export) and its console output."""
    workdir = tmp_path_factory.mktemp("finished") / "run"
    result = run_cli("acceleration", "--preset", "tiny", "--workdir", str(workdir))
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir, result


def test_a_finished_run_names_final_paths_and_leaves_no_control_files(finished):
    workdir, result = finished
    assert not (workdir / ".lock").exists() and not (workdir / ".staging").exists()  # lock released after success
    assert not (workdir / ".previous").exists() and not any((workdir / name).exists() for name in ("cache", "bench"))
    assert ".staging" not in result.stdout and ".staging" not in (workdir / "results.json").read_text()
    results = json.loads((workdir / "results.json").read_text())
    assert results["export"]["predict_example"][4] == str(workdir / "export")
    assert f"try the exported model: python run.py acceleration predict --model {workdir / 'export'}" in result.stdout
    assert ".staging" not in (workdir / "checkpoints" / "preprocessor" / "preprocessor.json").read_text()


@pytest.mark.parametrize("case", ["zero_signal", "diverged"])
def test_a_failed_re_run_keeps_the_finished_run_byte_identical(finished, tmp_path, case):
    workdir, _ = finished
    before = _tree(workdir)
    if case == "zero_signal":  # long enough to read and split; refused when the preprocessor fits on it
        zeros = tmp_path / "zeros.npy"
        np.save(zeros, np.zeros(24_000))
        result = run_cli("acceleration", "--preset", "tiny", "--workdir", str(workdir), "--data-dir", str(zeros))
        assert result.returncode == 2, result.stderr[-3000:]
    else:
        result = run_cli("acceleration", "--preset", "tiny", "--workdir", str(workdir),
                         "--set", "learning_rate=1e30")
        assert result.returncode == 1, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].endswith(f"; the finished run in {workdir} was kept unchanged"), errors
    assert "Traceback" not in result.stderr
    assert _tree(workdir) == before
    assert not (workdir / ".lock").exists()  # released after a failure
    evaluate = run_cli("acceleration", "--preset", "tiny", "--workdir", str(workdir), "--steps", "evaluate")
    assert evaluate.returncode == 0, evaluate.stderr[-3000:]  # the kept run is still whole


def test_a_failed_bench_keeps_the_finished_run_byte_identical(finished, tmp_path):
    workdir, _ = finished
    before = _tree(workdir)
    zeros = tmp_path / "zeros.npy"  # refused when the bench fits its preprocessor, after it made its staging folder
    np.save(zeros, np.zeros(24_000))
    result = run_cli("acceleration", "bench", "--preset", "tiny", "--workdir", str(workdir), "--data-dir", str(zeros))
    assert result.returncode == 2, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].endswith(f"; the finished run in {workdir} was kept unchanged"), errors
    assert _tree(workdir) == before and not (workdir / ".staging").exists() and not (workdir / ".lock").exists()


def test_an_interrupted_staged_run_resumes_and_the_finished_run_stays(finished, caplog):
    from common import training
    from common.staging import Staging
    from tasks.acceleration.task import TASK

    workdir, _ = finished
    before = _tree(workdir)
    task = TASK(TASK.Config.from_preset("tiny"))
    folder = Staging(workdir).prepare(train=True)
    _, resumed = training.fitted_preprocessor(task, task.load_data(None, folder), folder)
    assert not resumed
    _interrupted(folder)  # killed during training: its state is in the staging folder
    again = Staging(workdir)
    assert again.prepare(train=True) == folder and (folder / "backup").is_dir()
    with caplog.at_level("INFO"):
        _, resumed = training.fitted_preprocessor(task, task.load_data(None, folder), folder)
    assert resumed and "Resuming with the fitted preprocessor" in caplog.text
    assert again.abandon() and _tree(workdir) == before  # kept for the next re-run; WORKDIR untouched
    assert Staging(workdir).prepare(train=False) == folder and not (folder / "backup").exists()  # no resume
    Staging(workdir).abandon(keep=False)
    assert not (workdir / ".staging").exists() and _tree(workdir) == before


def test_a_swap_cut_short_is_undone_by_the_next_run(tmp_path):
    from common.staging import Staging, recover

    (tmp_path / "results.json").write_text("old")
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "best.keras").write_text("old model")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "shared.npz").write_text("shared")
    before = _tree(tmp_path)
    staging = Staging(tmp_path)
    staging.prepare(train=True)
    (staging.folder / "results.json").write_text("new")
    (staging.folder / "checkpoints").mkdir()
    staging._drop_links()  # as commit does first
    # The crash: the finished run moved aside, the staged results.json moved in, its checkpoints not yet.
    (tmp_path / ".previous").mkdir()
    for name in ("results.json", "checkpoints"):
        os.replace(tmp_path / name, tmp_path / ".previous" / name)
    os.replace(staging.folder / "results.json", tmp_path / "results.json")
    recover(tmp_path)
    assert _tree(tmp_path) == before and not (tmp_path / ".previous").exists()
    assert (tmp_path / ".staging" / "results.json").read_text() == "new"
    staging = Staging(tmp_path)  # and a swap that completes replaces the run, the shared data kept
    staging.prepare(train=True)
    (staging.folder / "results.json").write_text("newer")
    staging.commit()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "results.json"]
    assert (tmp_path / "results.json").read_text() == "newer" and (tmp_path / "data" / "shared.npz").exists()
