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


def test_a_run_interrupted_under_another_fingerprint_resumes_when_its_settings_match(tmp_path, caplog):
    # run.json written by another version of the suite (another hash, or epochs counted in it): the recorded
    # settings decide, so the same settings resume and a missing record starts afresh saying so.
    from common import training

    config = BaseConfig.from_preset("default", {"batch_size": 16})
    training.prepare_run(tmp_path, config)
    state = tmp_path / "checkpoints" / "run.json"
    record = json.loads(state.read_text())
    state.write_text(json.dumps({**record, "fingerprint": "written-by-an-older-suite"}))
    (tmp_path / "backup").mkdir()
    (tmp_path / "backup" / "state.json").write_text("{}")
    assert training.prepare_run(tmp_path, BaseConfig.from_preset("default", {"batch_size": 16, "epochs": 3}))
    for broken in ({"fingerprint": "x"}, {"config": ["not", "a", "mapping"]}, ["not", "a", "record"]):
        state.write_text(json.dumps(broken))
        (tmp_path / "backup").mkdir(exist_ok=True)
        (tmp_path / "backup" / "state.json").write_text("{}")
        caplog.clear()
        with caplog.at_level("WARNING"):
            assert not training.prepare_run(tmp_path, config)
        assert "holds an interrupted run with no record of its config" in caplog.text


def test_sentiment_predict_refuses_a_mistyped_path_unless_told_it_is_text(tiny_run):
    export = tiny_run("sentiment") / "export"
    typo = run_cli("sentiment", "predict", "--model", str(export), "my_reviw.txt")
    assert typo.returncode == 2 and "'my_reviw.txt': no such file" in typo.stderr and "--text" in typo.stderr
    as_text = run_cli("sentiment", "predict", "--json", "--model", str(export), "--text", "my_reviw.txt")
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

    empty_bin = tmp_path / "bin"  # no java on PATH; the interpreter by its own path keeps its virtual environment
    empty_bin.mkdir()
    workdir = tmp_path / "run"
    result = subprocess.run([sys.executable, str(ROOT / "run.py"), "captioning", "--preset", "tiny",
                             "--workdir", str(workdir)], capture_output=True, text=True,
                            env={**os.environ, "PATH": str(empty_bin)}, timeout=300)
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


# --- one clear error line instead of a traceback or a silent wrong answer -----------------------------------


def _error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def _vqa_scoring_files(folder: Path, question_ids=(1, 2, 3)) -> dict[str, str]:
    """A three-question VQA v2 questions + annotations pair, as ``score`` reads them."""
    questions = folder / "questions.json"
    annotations = folder / "annotations.json"
    questions.write_text(json.dumps({"data_subtype": "val2014", "questions": [
        {"image_id": 7, "question": "what colour?", "question_id": q} for q in question_ids]}))
    annotations.write_text(json.dumps({"data_subtype": "val2014", "annotations": [
        {"question_id": q, "image_id": 7, "question_type": "what color", "answer_type": "other",
         "multiple_choice_answer": "red", "answers": [{"answer": "red", "answer_id": k + 1} for k in range(10)]}
        for q in question_ids]}))
    return {"questions": str(questions), "annotations": str(annotations)}


_NO_MATCH = [{"question_id": 98, "answer": "red"}, {"question_id": 99, "answer": "blue"}]


@pytest.mark.parametrize("predictions", [[], _NO_MATCH], ids=["empty", "no-id-matches"])
def test_vqa_score_with_no_matching_prediction_is_one_error_even_with_allow_missing(tmp_path, predictions):
    from common.errors import TaskError
    from tasks.vqa.config import Config
    from tasks.vqa.task import VQATask

    results = tmp_path / "predictions.json"
    results.write_text(json.dumps(predictions))
    arguments = {**_vqa_scoring_files(tmp_path), "predictions": str(results)}
    for allow_missing in (True, False):
        with pytest.raises(TaskError, match=rf"predictions.json: no prediction matches any question: read "
                                            rf"{len(predictions)} predictions.* and 3 annotated questions"):
            VQATask(Config()).score({**arguments, "allow_missing": allow_missing})
    # A partial file that also answers a question not annotated: the extra id is named, with --allow-missing too.
    results.write_text(json.dumps([{"question_id": 1, "answer": "red"}, {"question_id": 99, "answer": "red"}]))
    with pytest.raises(TaskError, match=r"1 predicted question ids are not in the annotations \(e.g. \[99\]\)"):
        VQATask(Config()).score({**arguments, "allow_missing": True})
    results.write_text(json.dumps([{"question_id": 1, "answer": "red"}]))
    partial = VQATask(Config()).score({**arguments, "allow_missing": True})
    assert partial["overall"] == 100.0 and partial["questions_without_prediction"] == 2


def _tiny_export(folder: Path, task_name: str | None = "sentiment") -> Path:
    """A real SavedModel (one Dense layer, endpoint "serve") with the suite's task.json unless task_name is None."""
    import keras
    import tensorflow as tf

    from common import export

    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))

    def serve(x):
        return {"y": model(x)}

    manifest = None if task_name is None else {"task": task_name, "predict_endpoint": "serve"}
    export.write_archive(folder, [model], {"serve": (serve, [tf.TensorSpec([None, 2], tf.float32)])}, manifest)
    return folder


def _truncate(path: Path, keep: float) -> None:
    content = path.read_bytes()
    path.write_bytes(content[: int(len(content) * keep)])


@pytest.mark.parametrize("damage, named, problem", [
    (lambda d: _truncate(d / "saved_model.pb", 0.5), "saved_model.pb", "cannot be parsed"),
    (lambda d: _truncate(d / "saved_model.pb", 0.0), "saved_model.pb", "holds no MetaGraph"),
    (lambda d: _truncate(d / "variables" / "variables.index", 0.0), "variables.index", "is empty"),
    (lambda d: _truncate(d / "variables" / "variables.index", 0.9), "variables.index", "is cut short"),
    (lambda d: (d / "variables" / "variables.index").unlink(), "variables.index", "is missing"),
], ids=["cut-graph", "empty-graph", "empty-index", "cut-index", "no-index"])
def test_predict_on_a_damaged_export_names_the_file_and_the_export_step(tmp_path, damage, named, problem):
    from common import export
    from common.errors import TaskError
    from tasks.sentiment.config import Config
    from tasks.sentiment.task import SentimentTask

    folder = _tiny_export(tmp_path / "run" / "export")
    (tmp_path / "run" / "checkpoints").mkdir()  # a run's folder: the hint names it as the WORKDIR
    damage(folder)
    with pytest.raises(TaskError, match=rf"{named}: the export is damaged: it {problem}.*; re-run the export step: "
                                        rf"run.py sentiment --workdir .*run --steps export"):
        export.predict(SentimentTask(Config()), folder, ["a fine film"])


def test_a_damaged_variables_data_file_is_named_when_tensorflow_loads_the_export(tmp_path):
    from common import export
    from common.errors import TaskError

    folder = _tiny_export(tmp_path / "export", task_name="fake")
    _truncate(next((folder / "variables").glob("variables.data-*")), 0.5)  # seen only by TensorFlow's load
    task = type("FakeTask", (), {"name": "fake", "predict_endpoint": "serve"})()
    with pytest.raises(TaskError, match=r"'.*export': the export is damaged, TensorFlow cannot load it \(.+\); "
                                        r"re-run the export step: run.py fake --workdir WORKDIR --steps export"):
        export.open_export(task, folder)


def test_predict_on_a_saved_model_without_task_json_names_the_missing_manifest(tmp_path):
    folder = _tiny_export(tmp_path / "elsewhere", task_name=None)  # a SavedModel not written by this suite
    result = run_cli("sentiment", "predict", "--model", str(folder), "--text", "a fine film")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    errors = _error_lines(result)
    assert len(errors) == 1 and str(folder) in errors[0], result.stderr[-2000:]
    assert "holds a SavedModel but no task.json: it was not written by this suite's export step" in errors[0]
    (folder / "task.json").write_text("{not json")
    from common import export
    from common.errors import TaskError

    with pytest.raises(TaskError, match=r"task.json: damaged export, cannot read it"):
        export.check_export_folder(type("FakeTask", (), {"name": "sentiment"})(), folder)


def test_sentiment_and_translation_predict_refuse_an_empty_input_naming_its_position(tmp_path):
    from common.errors import TaskError
    from tasks.sentiment.config import Config as SentimentConfig
    from tasks.sentiment.task import SentimentTask
    from tasks.translation.config import Config as TranslationConfig
    from tasks.translation.task import TranslationTask

    sentiment = SentimentTask(SentimentConfig())
    with pytest.raises(TaskError, match=r"^input 2 of 2 is empty \(''\); expected the text of a review.*whitespace"):
        sentiment.predict_arguments(["A fine film.", ""])
    sentiment.input_kind = "text"
    with pytest.raises(TaskError, match=r"^input 1 of 1 is empty \(' \\n\\t'\); expected the text of a review"):
        sentiment.predict_arguments([" \n\t"])
    blank = tmp_path / "blank.txt"
    blank.write_text("  \n")
    sentiment.input_kind = None
    with pytest.raises(TaskError, match=rf"^input 1 of 2: the file '{blank}' holds no text; expected"):
        sentiment.predict_arguments([str(blank), "fine"])
    assert list(sentiment.predict_arguments(["A fine film."])[0]) == ["A fine film."]
    translation = TranslationTask(TranslationConfig())
    with pytest.raises(TaskError, match=r"^input 3 of 3 is empty \('   '\); expected a sentence to translate"):
        translation.predict_arguments(["Hello.", "Go.", "   "])
    assert list(translation.predict_arguments(["Hello."])[0]) == ["Hello."]


def test_pairs_with_an_empty_target_are_dropped_with_a_warning_and_all_empty_is_an_error(tmp_path, caplog):
    from data.pairs import read_pairs

    path = tmp_path / "spa.txt"
    path.write_text("Go.\tVe.\nHi.\t\nRun!\t¡Corre!\n\nWho?\t \n\tFuego\nWow!\t¡Órale!\n", encoding="utf-8")
    with caplog.at_level("WARNING", logger="data.pairs"):
        result = read_pairs(path)
    assert [pair.source for pair in result.pairs] == ["Go.", "Run!", "Wow!"]  # the dropping stays
    assert result.statistics["empty_side"] == 3
    warnings = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert len(warnings) == 1 and str(path) in warnings[0], warnings
    assert "skipped 3 of 6 pairs (50.0%) with an empty side (1 with an empty source, 2 with an empty target; " \
           "first at line 2)" in warnings[0]
    path.write_text("Go.\t\nHi.\t  \n", encoding="utf-8")
    with pytest.raises(DataError, match=r"spa.txt: every one of its 2 pairs has an empty side \(2 with an empty "
                                        r"target; first at line 1\); expected 'source<TAB>target'"):
        read_pairs(path)


# --- sizes are checked before anything is allocated (common.sizes) -------------------------------------------------
@pytest.mark.parametrize("task, key", [("language_model", "sequence_length"), ("acceleration", "lstm_units"),
                                       ("sentiment", "batch_size")])
def test_a_size_no_machine_holds_is_one_error_line_naming_the_key_before_anything_runs(tmp_path, task, key):
    result = run_cli(task, "--workdir", str(tmp_path / "w"), "--set", f"{key}=100000000", timeout=120)
    assert result.returncode == 2, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {key}=100000000: a run with these sizes needs about")
    assert f"expected a smaller {key}" in errors[0] and "Traceback" not in result.stderr
    assert not (tmp_path / "w").exists()  # refused before WORKDIR, data or model


def test_the_size_estimate_passes_every_preset_and_blames_the_key_that_breaks_it():
    import tasks
    from common.sizes import check_sizes, estimate_bytes, sizes

    for name in tasks.TASK_NAMES:
        config_class = tasks.load_config(name)
        for preset in ("default", *config_class.PRESETS):
            config = config_class.from_preset(preset)
            assert estimate_bytes(sizes(config)) < 4 * 2**30, (name, preset)  # shipped presets fit a small machine
            check_sizes(config, memory=4 * 2**30)
    config = tasks.load_config("translation").from_preset("default", ["batch_size=300000", "lstm_units=512"])
    with pytest.raises(ConfigError, match=r"^batch_size=300000: .* more than this machine's 4.0 GiB; expected a "
                                          r"smaller batch_size \(its default is 32\)"):
        check_sizes(config, memory=4 * 2**30)
    check_sizes(config, memory=0)  # a machine whose memory cannot be read is not checked


def test_a_failed_first_run_leaves_no_half_made_workdir_and_an_old_one_stays(tmp_path, monkeypatch):
    import argparse

    from common import runner
    from tasks.acceleration.task import TASK

    def fails_after_writing_data(task_class, options, action, config, workdir):
        (workdir / "data").mkdir()
        (workdir / "data" / "signal.npy").write_bytes(b"synthetic")  # as the synthetic default writes it first
        raise DataError("the signal is all zeros")

    monkeypatch.setattr(runner, "run_in", fails_after_writing_data)
    config = TASK.Config.from_preset("tiny")
    for workdir in (tmp_path / "new", tmp_path / "old"):
        if workdir.name == "old":
            workdir.mkdir()
            (workdir / "notes.txt").write_text("mine")
        options = argparse.Namespace(data_dir=None, download=False, workdir=workdir, preset="tiny")
        with pytest.raises(DataError):
            runner.run(TASK, options, "run", config)
    assert not (tmp_path / "new").exists()
    assert sorted(p.name for p in (tmp_path / "old").iterdir()) == ["data", "notes.txt"]  # not this run's to remove


def test_an_export_that_needs_a_missing_package_is_one_error_naming_it(tmp_path):
    """A subword translation export lists tensorflow_text in task.json's imports; without the package, loading
    it is one TaskError naming the package and how to install it, before TensorFlow tries the graph."""
    from common import export
    from common.errors import TaskError

    with pytest.raises(TaskError, match=r"needs the Python package 'no_such_package_here'.*pip install "
                                        r"no-such-package-here"):
        export.open_export(None, tmp_path, manifest={"imports": ["no_such_package_here"]})
