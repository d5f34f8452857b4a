"""Atomic writes: a failure mid-write leaves the previous file or folder intact."""

import json

import pytest

from common.io import atomic_directory, atomic_path, atomic_write_json


def test_atomic_write_json_replaces_and_writes_nan_as_null(tmp_path):
    target = tmp_path / "results.json"
    atomic_write_json(target, {"a": 1})
    atomic_write_json(target, {"a": 2, "b": float("nan")})
    assert json.loads(target.read_text()) == {"a": 2, "b": None}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # no temporary left behind


def test_atomic_files_get_the_usual_permissions(tmp_path):
    import os
    import stat

    target = tmp_path / "plot.png"
    atomic_write_json(target, {})
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "results.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as temporary:
            temporary.write_text("half")
            raise RuntimeError("killed while writing")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_atomic_directory_swaps_whole_folders(tmp_path):
    target = tmp_path / "export"
    atomic_directory(target, lambda d: (d / "v1").write_text("1"))
    atomic_directory(target, lambda d: (d / "v2").write_text("2"))
    assert sorted(p.name for p in target.iterdir()) == ["v2"]

    def broken(directory):
        (directory / "partial").write_text("x")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_directory(target, broken)
    assert sorted(p.name for p in target.iterdir()) == ["v2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]
