"""Repeats (--set seeds=...) and the reproduction table (run.py report): aggregates, Markdown, errors, no TF."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tasks
from common import report
from common.anchors import Anchor
from conftest import ROOT, run_cli


def _error_lines(result):
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_seeds_run_every_seed_into_its_folder_and_aggregate_equals_numpy(tmp_path):
    workdir = tmp_path / "repeats"
    result = run_cli("acceleration", "--preset", "tiny", "--workdir", str(workdir), "--steps", "train,evaluate",
                     "--set", "seeds=1,2")
    assert result.returncode == 0, result.stderr[-3000:]
    per_seed = {seed: json.loads((workdir / f"seed-{seed}" / "results.json").read_text()) for seed in (1, 2)}
    for seed, results in per_seed.items():  # ordinary run folders: their own config, command and metrics
        assert results["config"]["seed"] == seed and results["config"]["seeds"] == []
        assert f"seed={seed}" in results["command"] and "metrics" in results
    aggregate = json.loads((workdir / "results.json").read_text())
    assert aggregate["seeds"] == [1, 2] and aggregate["runs"] == {"1": "seed-1", "2": "seed-2"}
    assert "seeds=1,2" in aggregate["command"] and aggregate["hardware"]["cpu_count"] >= 1
    primary = aggregate["metrics"]["primary"]
    for path in ((("model", primary)), ("baselines", "ridge_ar", "mse")):
        values = []
        for results in per_seed.values():
            value = results["metrics"]
            for key in path:
                value = value[key]
            values.append(value)
        stats = aggregate["metrics"]
        for key in path:
            stats = stats[key]
        assert values[0] != values[1], "the seed must change the run (synthetic data, split, weights)"
        assert stats["values"] == values and stats["n"] == 2
        assert stats["mean"] == pytest.approx(np.mean(values)) and stats["std"] == pytest.approx(np.std(values, ddof=1))
        assert (stats["min"], stats["max"]) == (min(values), max(values))
    assert "mean ± std" in result.stdout and "← primary" in result.stdout


_FAKE_SEEDS = """
import argparse, json, pathlib, sys
sys.argv = ["run.py", "sentiment", "--set", "seeds=SEEDS"]
import run
from common import runner
from common.config import BaseConfig

class Task:
    name = "sentiment"

values = VALUES
def fake_runner(command):
    seed = int(next(w for w in command if w.startswith("seed=")).split("=")[1])
    folder = pathlib.Path(command[command.index("--workdir") + 1])
    folder.mkdir(parents=True, exist_ok=True)
    if values[seed] is None:
        return 1
    metrics = {"primary": "accuracy", "model": {"accuracy": values[seed], "name": "bilstm"},
               "baselines": {"tfidf": {"accuracy": 0.8}}, "confusion": [[seed]]}
    (folder / "results.json").write_text(json.dumps({"task": "sentiment", "config": {"seed": seed},
                                                     "metrics": metrics, "data": {"source": "x"}}))
    return 0

options = argparse.Namespace(preset="tiny", data_dir=None, download=False, overrides=["seeds=SEEDS"],
                             steps="train,evaluate,export")
config = BaseConfig.from_preset("default", ["seeds=SEEDS"])
pathlib.Path(WORKDIR).mkdir(parents=True, exist_ok=True)  # as runner.run makes it
try:
    runner.run_seeds(Task, options, config, pathlib.Path(WORKDIR), runner=fake_runner)
except runner.SeedFailed as error:
    print("FAILED:", error)
"""


def _fake_seeds(tmp_path, values):
    seeds = ",".join(map(str, values))
    script = (_FAKE_SEEDS.replace("SEEDS", seeds).replace("VALUES", repr(values))
              .replace("WORKDIR", repr(str(tmp_path / "w"))))
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return result, tmp_path / "w"


def test_aggregate_keeps_every_numeric_metric_and_baseline_with_sample_std(tmp_path):
    values = {1: 0.84, 2: 0.85, 3: 0.87}
    result, workdir = _fake_seeds(tmp_path, values)
    aggregate = json.loads((workdir / "results.json").read_text())
    accuracy = aggregate["metrics"]["model"]["accuracy"]
    assert accuracy["mean"] == pytest.approx(np.mean(list(values.values())))
    assert accuracy["std"] == pytest.approx(np.std(list(values.values()), ddof=1))
    assert aggregate["metrics"]["baselines"]["tfidf"]["accuracy"]["std"] == 0.0
    assert aggregate["metrics"]["model"]["name"] == "bilstm" and "confusion" not in aggregate["metrics"]
    assert "model.accuracy" in result.stdout and "0.84, 0.85, 0.87" in result.stdout


def _files(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and ".staging" not in p.relative_to(folder).parts}


def test_a_failed_seed_names_itself_and_leaves_the_finished_series_byte_identical(tmp_path):
    _, workdir = _fake_seeds(tmp_path, {1: 0.84, 2: 0.85})
    finished = _files(workdir)
    assert set(finished) == {"results.json", "seed-1/results.json", "seed-2/results.json"}

    result, _ = _fake_seeds(tmp_path, {1: 0.9, 2: None, 3: 0.86})
    staged = workdir / ".staging"
    assert "FAILED: seed 2 failed (exit code 1)" in result.stdout and str(staged / "seed-2") in result.stdout
    assert "finished series in WORKDIR was kept unchanged" in result.stdout
    assert _files(workdir) == finished  # no seed folder replaced, the old aggregate still beside its seeds
    assert (staged / "seed-1" / "results.json").exists() and not (staged / "seed-3").exists()

    _fake_seeds(tmp_path, {1: 0.9, 2: 0.8, 3: 0.86})  # the re-run finishes: the new series replaces the old
    aggregate = json.loads((workdir / "results.json").read_text())
    assert aggregate["seeds"] == [1, 2, 3] and aggregate["metrics"]["model"]["accuracy"]["values"] == [0.9, 0.8, 0.86]
    assert not staged.exists()
    assert set(_files(workdir)) == {"results.json", *(f"seed-{seed}/results.json" for seed in (1, 2, 3))}


def test_a_first_failed_series_writes_no_aggregate(tmp_path):
    result, workdir = _fake_seeds(tmp_path, {1: 0.84, 2: None})
    assert "FAILED: seed 2 failed" in result.stdout and "kept unchanged" not in result.stdout
    assert not (workdir / "results.json").exists() and not (workdir / "seed-1").exists()


def test_bad_seeds_value_is_one_error_line(tmp_path):
    result = run_cli("acceleration", "--set", "seeds=a,b", "--workdir", str(tmp_path / "w"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = _error_lines(result)
    assert len(lines) == 1 and "--set seeds='a,b': expected comma-separated int values; 'a' is not one" in lines[0]


# --- run.py report -----------------------------------------------------------------------------------------------
def _results(task, seed, accuracy, baseline, command=None, preset="best"):
    return {"task": task, "preset": preset, "command": command or f"run.py {task} --preset {preset} --set seed={seed}",
            "date": f"2026-11-2{seed}T10:00:00+00:00", "primary_metric": "accuracy",
            "config": {"seed": seed, "seeds": [], "epochs": 3},
            "data": {"source": "aclImdb_train.tar.gz", "path": "/data/imdb"},
            "metrics": {"primary": "accuracy", "model": {"accuracy": accuracy, "roc_auc": 0.9},
                        "baselines": {"tfidf_bigram_logistic": {"accuracy": baseline}}, "evaluated_on": "test"},
            "hardware": {"cpu": "AMD EPYC", "cpu_count": 2, "usable_cpus": 2},
            "devices": {"gpu_used": False, "gpu_names": []}}


def _write(folder, payload):
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(payload if isinstance(payload, str) else json.dumps(payload))
    return folder


def test_report_merges_seed_runs_and_puts_published_anchors_above_them(tmp_path):
    folders = [_write(tmp_path / f"best-s{seed}", _results("sentiment", seed, accuracy, 0.87))
               for seed, accuracy in ((1, 0.84), (2, 0.85), (3, 0.86))]
    output = tmp_path / "table.md"
    result = run_cli("report", *map(str, folders), "--output", str(output))
    assert result.returncode == 0, result.stderr
    text = output.read_text()
    assert text.startswith("### sentiment: published vs reproduced")
    assert "| published | 0.912 |" in text and "Wang & Manning 2012" in text  # the task's anchors module
    assert "| reproduced | 0.850 ± 0.010 (n=3) | tfidf_bigram_logistic 0.870 ± 0.000 |" in text
    assert "`run.py sentiment --preset best --set seed=1`" in text and "1, 2, 3 (one run each)" in text
    assert "AMD EPYC, 2 CPU cores" in text and "2026-11-23" in text
    again = run_cli("report", *map(str, reversed(folders)))  # stable: the order of the folders does not matter
    assert again.stdout == text


def test_reproduction_markdown_known_answer_with_custom_anchors():
    rows = report.reproduction_rows([("a", _results("translation", 1, 19.74, 13.3)),
                                     ("b", _results("translation", 2, 20.26, 13.1))])
    anchors = {"translation": (Anchor("accuracy", 34.8, "WMT'14 en-fr", "test", "Someone 2014", "ensemble"),)}
    text = report.reproduction_markdown(rows, anchors, tasks.TASK_NAMES)
    assert "| published | 34.8 |  | WMT'14 en-fr | test | Someone 2014 (ensemble) |" in text
    assert "| reproduced | 20.0 ± 0.4 (n=2) | tfidf_bigram_logistic 13.2 ± 0.1 |" in text
    with_extra = report.reproduction_markdown(rows, anchors, tasks.TASK_NAMES, extra_metrics=["roc_auc", "nope"])
    assert "|  | accuracy | roc_auc | baselines (accuracy) |" in with_extra and "nope" not in with_extra
    assert "| reproduced | 20.0 ± 0.4 (n=2) | 0.900 ± 0.000 (n=2) |" in with_extra


def test_report_reads_a_seeds_aggregate_and_a_folder_of_seed_runs(tmp_path):
    per_seed = {seed: _results("sentiment", seed, value, 0.8) for seed, value in ((4, 0.8), (5, 0.9))}
    aggregate = {**report.seed_aggregate(per_seed, {4: "seed-4", 5: "seed-5"}), "command": "run.py sentiment X",
                 "date": "2026-11-26T00:00:00+00:00", "hardware": per_seed[4]["hardware"]}
    _write(tmp_path / "agg", aggregate)
    loose = tmp_path / "loose"
    for seed, results in per_seed.items():
        _write(loose / f"seed-{seed}", {**results, "command": "run.py sentiment Y"})
    result = run_cli("report", str(tmp_path / "agg"), str(loose))
    assert result.returncode == 0, result.stderr
    assert "| reproduced | 0.850 ± 0.071 (n=2) |" in result.stdout and "| 4, 5 |" in result.stdout
    assert "`run.py sentiment Y`" in result.stdout and "4, 5 (one run each)" in result.stdout


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda d: d / "absent", "no such run folder"),
        (lambda d: (d / "empty").mkdir() or d / "empty", "no results.json"),
        (lambda d: _write(d / "bad", '{"task": "sentiment",\n "metrics": }'),
         "not valid JSON: Expecting value: line 2"),
        (lambda d: _write(d / "list", "[1, 2]"), "expected a JSON object"),
        (lambda d: _write(d / "odd", _results("dance", 1, 0.5, 0.5)), "unknown task 'dance'"),
        (lambda d: _write(d / "nometrics", {"task": "sentiment"}), "no metrics in it"),
    ],
)
def test_report_errors_are_one_line_naming_the_file(tmp_path, make, fragment):
    folder = make(tmp_path)
    result = run_cli("report", str(folder))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    lines = _error_lines(result)
    assert len(lines) == 1 and fragment in lines[0] and str(folder) in lines[0], result.stderr


def test_report_and_its_help_run_without_tensorflow(tmp_path):
    folder = _write(tmp_path / "run", _results("sentiment", 1, 0.8, 0.7))
    script = ("import sys, runpy; sys.argv = ['run.py', *sys.argv[1:]]\n"
              "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\nexcept SystemExit as e:\n"
              "    assert e.code in (0, None), e.code\n"
              "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'report imported TensorFlow'\n")
    for arguments in (["report", "--help"], ["report", str(folder)]):
        result = subprocess.run([sys.executable, "-c", script, *arguments], cwd=ROOT, capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 0, result.stderr[-2000:]
    assert "RUN_DIR" in subprocess.run([sys.executable, "run.py", "report", "--help"], cwd=ROOT, capture_output=True,
                                       text=True, timeout=60).stdout


@pytest.mark.parametrize("name", tasks.TASK_NAMES)
def test_every_task_declares_its_anchors_in_an_anchors_module(name):
    import importlib

    anchors = importlib.import_module(f"tasks.{name}.anchors").ANCHORS
    assert isinstance(anchors, tuple) and all(isinstance(a, Anchor) for a in anchors)
    assert all(a.source and a.dataset and a.split for a in anchors)
    if name != "acceleration":
        assert anchors, f"{name} has published numbers to compare with"


# --- what the report prints is portable: names and relative paths, never a machine path ----------------------------
def _portable_case(tmp_path):
    project, home = tmp_path / "project", tmp_path / "home"
    project.mkdir()
    home.mkdir()
    results = _results("acceleration", 1, 0.5, 0.6,
                       command=(f"run.py acceleration --data-dir {home}/data/cwru_97.npz --set signal_key=DE "
                                f"--set image_dir={home}/images,{project}/more --workdir {project}/runs/cwru"))
    results["data"] = {"source": "file", "path": f"{home}/data/cwru_97.npz", "samples": 1000}
    synthetic = _results("acceleration", 2, 0.4, 0.6, command=f"run.py acceleration --workdir {project}/runs/default")
    synthetic["config"]["epochs"] = 5  # another configuration: its own row
    synthetic["data"] = {"source": "synthetic", "path": f"{project}/runs/default/data/vibration.npz"}
    return project, home, [(f"{project}/runs/cwru", results), (f"{project}/runs/default", synthetic)]


def test_report_rows_show_relative_and_home_paths_and_data_names(tmp_path, monkeypatch):
    project, home, runs = _portable_case(tmp_path)
    monkeypatch.chdir(project)
    monkeypatch.setenv("HOME", str(home))
    rows = {row["data"]: row for row in report.reproduction_rows(runs)}
    assert set(rows) == {"cwru_97.npz", "synthetic"}
    assert rows["cwru_97.npz"]["command"] == ("run.py acceleration --data-dir ~/data/cwru_97.npz --set signal_key=DE "
                                              "--set image_dir=~/images,more --workdir runs/cwru")
    assert rows["synthetic"]["command"] == "run.py acceleration --workdir runs/default"
    text = report.reproduction_markdown(list(rows.values()), {}, tasks.TASK_NAMES)
    assert str(tmp_path) not in text and "/project" not in text and "/home" not in text, text
    assert "| cwru_97.npz |" in text and "| synthetic |" in text


def test_report_command_prints_no_absolute_path(tmp_path):
    project, home, runs = _portable_case(tmp_path)
    folders = [_write(tmp_path / "results" / Path(folder).name, results) for folder, results in runs]
    environment = {**os.environ, "HOME": str(home)}
    result = subprocess.run([sys.executable, str(ROOT / "run.py"), "report", *map(str, folders)], cwd=project,
                            env=environment, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "`run.py acceleration --data-dir ~/data/cwru_97.npz" in result.stdout
    assert "--workdir runs/cwru`" in result.stdout and "| synthetic |" in result.stdout
    assert str(tmp_path) not in result.stdout, result.stdout


@pytest.mark.parametrize(
    "path, expected",
    [
        ("/w/project/runs/a", "runs/a"),
        ("/w/project", "."),
        ("/w/home/data/x.npz", "~/data/x.npz"),
        ("/w/home", "~"),
        ("/w/shared/data/cwru", "../shared/data/cwru"),  # elsewhere: relative to where report runs
        ("/w/projects/other", "../projects/other"),  # a sibling whose name starts like the folder is not under it
        ("runs/a", "runs/a"),
        ("0.5", "0.5"),
    ],
)
def test_portable_path(path, expected):
    assert report.portable_path(path, cwd="/w/project", home="/w/home") == expected


@pytest.mark.parametrize(
    "info, expected",
    [
        ({"source": "synthetic", "path": "/abs/runs/a/data/corpus.txt"}, "synthetic"),
        ({"source": "synthetic (/abs/runs/t/data/pairs.txt)"}, "synthetic"),
        ({"source": "synthetic shape scenes (seed 1234) in /abs/runs/vqa/data"}, "synthetic"),
        ({"source": "file", "path": "/abs/data/cwru_97.npz"}, "cwru_97.npz"),
        ({"source": "files", "path": "/abs/data/cwru", "files": {"a.npz": {}, "b.npz": {}}}, "cwru (2 files)"),
        ({"source": "file", "path": "/abs/a.npz,/abs/b.npz"}, "a.npz, b.npz"),
        ({"source": "files", "path": "/abs/imdb/aclImdb_train.tar.gz"}, "aclImdb_train.tar.gz"),
        ({"source": "/abs/data/coco_mini", "format": "coco"}, "coco_mini"),
        ({"source": "/abs/fra.txt", "path": "/abs/fra.txt", "format": "tab-separated pairs"}, "fra.txt"),
        ({"source": "tfds ted_hrlr_translate/pt_to_en (downloaded to /abs/x)",
          "format": "tfds ted_hrlr_translate/pt_to_en/1.0.0"}, "tfds ted_hrlr_translate/pt_to_en/1.0.0"),
        ({"source": "tfds imdb_reviews (downloaded)", "path": "/abs/tfds/imdb"}, "tfds imdb_reviews"),
        ({}, "?"),
    ],
)
def test_data_is_named_not_located(info, expected):
    assert report.data_name(info) == expected
