"""Bad input never yields a silent wrong result or a traceback: the cases of the suite's shared code."""

import json
from pathlib import Path
import math

import numpy as np
import pytest

from common.config import BaseConfig, ConfigError
from common.io import atomic_directory
from conftest import run_cli
from data import DataError
from data.signal import read_signal


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e999"])
def test_non_finite_numbers_are_refused_for_every_float_field(value):
    with pytest.raises(ConfigError, match="learning_rate=.* is not a finite number"):
        BaseConfig.from_preset("default", [f"learning_rate={value}"])


def test_a_diverging_run_fails_with_exit_1_names_the_epoch_and_exports_nothing(tmp_path):
    result = run_cli("acceleration", "--preset", "tiny", "--workdir", str(tmp_path), "--set", "learning_rate=1e30")
    assert result.returncode == 1, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "diverged" in errors[0] and "in epoch 1" in errors[0], result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "export").exists() and not (tmp_path / "results.json").exists()


def test_a_workdir_that_is_a_file_is_a_usage_error(tmp_path):
    file = tmp_path / "file"
    file.write_text("x")
    result = run_cli("acceleration", "--preset", "tiny", "--workdir", str(file))
    assert result.returncode == 2 and "is a file; expected a folder" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_data_error_leaves_no_empty_workdir(tmp_path):
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros(10))
    workdir = tmp_path / "new" / "run"
    result = run_cli("acceleration", "--preset", "tiny", "--data-dir", str(bad), "--workdir", str(workdir))
    assert result.returncode == 2 and "bad.npy" in result.stderr
    assert not workdir.exists()


def test_a_blank_line_inside_a_signal_csv_is_an_error_naming_the_line(tmp_path):
    path = tmp_path / "signal.csv"
    path.write_text("DE\n0.5\n0.25\n\n0.125\n")
    with pytest.raises(DataError, match=r"signal.csv: line 4 is blank"):
        read_signal(path)
    path.write_text("DE\n0.5\n0.25\n0.125\n\n\n")  # trailing blank lines shift nothing
    np.testing.assert_array_equal(read_signal(path), [0.5, 0.25, 0.125])


def test_a_killed_folder_write_is_cleaned_by_the_next_write(tmp_path):
    target = tmp_path / "export"
    stale = tmp_path / ".export.abc123.tmp"
    (stale / "variables").mkdir(parents=True)
    atomic_directory(target, lambda folder: (folder / "saved_model.pb").write_text("x"))
    assert (target / "saved_model.pb").is_file() and not stale.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["export"]


def test_a_changed_config_names_the_changed_fields(tmp_path, caplog):
    from common import training

    config = BaseConfig.from_preset("default", {"batch_size": 16})
    training.prepare_run(tmp_path, config)
    (tmp_path / "backup").mkdir()
    (tmp_path / "backup" / "state.json").write_text("{}")
    with caplog.at_level("WARNING"):
        resumed = training.prepare_run(tmp_path, BaseConfig.from_preset("default", {"batch_size": 32}))
    assert not resumed and "batch_size: 16 → 32" in caplog.text
    assert math.isfinite(json.loads((tmp_path / "checkpoints" / "run.json").read_text())["config"]["learning_rate"])


def test_sentiment_predict_refuses_a_mistyped_path_unless_told_it_is_text(tiny_run):
    export = tiny_run("sentiment") / "export"
    typo = run_cli("sentiment", "predict", "--model", str(export), "my_reviw.txt")
    assert typo.returncode == 2 and "'my_reviw.txt': no such file" in typo.stderr and "--text" in typo.stderr
    as_text = run_cli("sentiment", "predict", "--model", str(export), "--text", "my_reviw.txt")
    assert as_text.returncode == 0, as_text.stderr[-2000:]
    assert json.loads(as_text.stdout.strip().splitlines()[0])["input"] == "my_reviw.txt"


def test_a_pair_line_that_lost_its_tab_in_a_three_column_file_is_named(tmp_path):
    from data.pairs import read_pairs

    path = tmp_path / "fra.txt"
    path.write_text("Go.\tVa !\tCC-BY 2.0 (France) #1\nHi.\tSalut !\tCC-BY 2.0 (France) #2\n"
                    "Run! Cours !\tCC-BY 2.0 (France) #3\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"fra.txt:3: found 2 tab-separated fields .* layout \(line 1\) has 3"):
        read_pairs(path)


def test_vqa_score_refuses_partial_results_unless_allowed_and_names_a_folder(tiny_run, tmp_path):
    workdir = tiny_run("vqa")
    results = json.loads((workdir / "results.json").read_text())
    files = results["data"]["test_files"]  # the test split in VQA format, written by the run
    predictions = json.loads(Path(results["metrics"]["results_file"]).read_text())
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps(predictions[1:]))
    arguments = ["vqa", "score", "--questions", files["questions"], "--annotations", files["annotations"]]
    refused = run_cli(*arguments, "--predictions", str(partial))
    assert refused.returncode == 2 and "have no prediction" in refused.stderr and "--allow-missing" in refused.stderr
    allowed = run_cli(*arguments, "--predictions", str(partial), "--allow-missing")
    assert allowed.returncode == 0, allowed.stderr[-2000:]
    assert json.loads(allowed.stdout)["questions_without_prediction"] == 1
    folder = run_cli(*arguments, "--predictions", str(tmp_path))
    assert folder.returncode == 2 and "is a folder; expected a JSON file" in folder.stderr


def test_captioning_without_java_fails_at_once_before_training(tmp_path):
    import os
    import subprocess
    import sys

    from conftest import ROOT

    bin_dir = tmp_path / "bin"  # python but no java on PATH
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    workdir = tmp_path / "run"
    result = subprocess.run([str(bin_dir / "python"), str(ROOT / "run.py"), "captioning", "--preset", "tiny",
                             "--workdir", str(workdir)], capture_output=True, text=True,
                            env={**os.environ, "PATH": str(bin_dir)}, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "need a Java runtime" in errors[0] and "metrics=approximate" in errors[0]
    assert "Traceback" not in result.stderr and not workdir.exists()


def test_the_export_check_refuses_an_endpoint_with_non_finite_outputs(tmp_path):
    import keras
    import tensorflow as tf

    from common import export

    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.get_layer(index=1).set_weights([np.full((2, 1), np.nan, np.float32), np.zeros(1, np.float32)])

    def serve(x):
        return {"y": model(x)}

    export.write_archive(tmp_path / "export", [model], {"serve": (serve, [tf.TensorSpec([None, 2], tf.float32)])})
    with pytest.raises(RuntimeError, match="NaN or infinite values on the smoke inputs"):
        export.check_in_fresh_process(tmp_path / "export", {"serve": [np.ones((1, 2), np.float32)]})


def test_acceleration_folder_with_one_bad_recording_names_that_file(tmp_path):
    folder = tmp_path / "recordings"
    folder.mkdir()
    np.save(folder / "good.npy", np.sin(np.arange(30_000) / 7.0))
    np.save(folder / "broken.npy", np.where(np.arange(30_000) == 99, np.nan, 0.0))
    result = run_cli("acceleration", "--preset", "tiny", "--data-dir", str(folder), "--workdir", str(tmp_path / "w"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "broken.npy" in errors[0] and "first at sample 99" in errors[0], result.stderr[-2000:]
