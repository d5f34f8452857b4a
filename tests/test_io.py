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


def test_describe_missing_path_tells_a_link_loop_and_a_broken_link_from_a_missing_path(tmp_path):
    from common.io import describe_missing_path

    (tmp_path / "loop").symlink_to("loop")  # points at itself
    (tmp_path / "ping").symlink_to("pong")  # two links pointing at each other
    (tmp_path / "pong").symlink_to("ping")
    (tmp_path / "dangling").symlink_to("nowhere")
    (tmp_path / "file").write_text("x")
    assert describe_missing_path(tmp_path / "loop") == "is a symbolic-link loop"
    assert describe_missing_path(tmp_path / "ping") == "is a symbolic-link loop"
    loop = str(tmp_path / "loop")
    assert describe_missing_path(tmp_path / "loop" / "data") == f"is unreachable: {loop!r} is a symbolic-link loop"
    assert describe_missing_path(tmp_path / "dangling") == "is a broken symbolic link (points to 'nowhere')"
    assert describe_missing_path(tmp_path / "absent") == "does not exist"
    assert describe_missing_path(tmp_path / "absent" / "deeper") == "does not exist"
    file = str(tmp_path / "file")
    assert describe_missing_path(tmp_path / "file" / "x") == f"does not exist ({file!r} is a file, not a folder)"
    assert describe_missing_path(tmp_path / "file") == "exists"
