"""Shared fixtures: the project root on sys.path, quiet TensorFlow, the shared real-data folder."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Real public data lives beside the checkout (../shared/data); a user's clone does not have it.
SHARED_DATA = Path(os.environ.get("RNN_SUITE_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent")
    return SHARED_DATA


def run_cli(*arguments: str, cwd: Path | None = None, timeout: float = 600):
    """Runs ``python run.py ...`` in a subprocess; returns the CompletedProcess (text mode)."""
    import subprocess

    return subprocess.run(
        [sys.executable, str(ROOT / "run.py"), *arguments],
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


_TINY_RUNS: dict[str, Path] = {}


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """``tiny_run(task)`` → WORKDIR of one ``run.py TASK --preset tiny`` per test session (shared by
    the registry-wide shape test and the task's own predict/score tests, so each task trains once)."""

    def run(name: str) -> Path:
        if name not in _TINY_RUNS:
            workdir = tmp_path_factory.mktemp(f"tiny_{name}")
            result = run_cli(name, "--preset", "tiny", "--workdir", str(workdir))
            assert result.returncode == 0, f"tiny {name} run failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
            # What the user saw, for the tests of the console (kept beside, not inside, the workdir).
            (workdir.parent / f"{workdir.name}.stdout.txt").write_text(result.stdout)
            (workdir.parent / f"{workdir.name}.stderr.txt").write_text(result.stderr)
            _TINY_RUNS[name] = workdir
        return _TINY_RUNS[name]

    return run
