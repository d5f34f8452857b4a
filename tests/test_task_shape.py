"""One shape for every task (parametrized over the registry): results.json, the saved fitted state,
and evaluate / export / predict from a saved run in a new process without refitting anything."""

import json

import pytest

import tasks
from conftest import run_cli

# Keys of metrics that measure the machine, not the model: they may differ between two evaluations.
_TIMING_WORDS = ("seconds", "per_second", "results_file")


def _without_timings(value):
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if not any(w in k for w in _TIMING_WORDS)}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


@pytest.mark.parametrize("name", tasks.TASK_NAMES)
def test_saved_run_evaluates_exports_and_predicts_identically_in_a_new_process(name, tiny_run):
    task_class = tasks.load_task(name)
    workdir = tiny_run(name)
    first = json.loads((workdir / "results.json").read_text())

    # One results.json shape: the primary metric names a value of the model and of every baseline.
    metrics = first["metrics"]
    assert metrics["primary"] == task_class.primary_metric == first["primary_metric"]
    assert isinstance(metrics["model"][metrics["primary"]], (int, float))
    assert metrics["baselines"], "every task compares the model with at least one baseline"
    for baseline, scores in metrics["baselines"].items():
        assert isinstance(scores[metrics["primary"]], (int, float)), baseline
    # The fitted state is an artefact beside the checkpoint, and the export names its task.
    assert (workdir / "checkpoints" / "preprocessor" / "preprocessor.json").is_file()
    assert json.loads((workdir / "export" / "task.json").read_text())["task"] == name

    again = run_cli(name, "--preset", "tiny", "--workdir", str(workdir), "--steps", "evaluate,export")
    assert again.returncode == 0, again.stderr[-4000:]
    second = json.loads((workdir / "results.json").read_text())
    assert "fit_preprocessor" not in second["seconds"] and "train" not in second["seconds"]
    assert _without_timings(second["metrics"]) == _without_timings(first["metrics"])
    assert {k: v["sha256"] for k, v in second["export"]["endpoints"].items()} == {
        k: v["sha256"] for k, v in first["export"]["endpoints"].items()
    }, "the re-exported model answers the smoke inputs differently: something was refitted"

    # The run wrote sample inputs; predict --json on them prints one JSON object per line.
    command = second["export"]["predict_example"]
    assert command[:3] == ["run.py", name, "predict"]
    predicted = run_cli(*command[1:], "--json")
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    lines = [json.loads(line) for line in predicted.stdout.strip().splitlines()]
    assert lines and all(isinstance(line, dict) for line in lines)


@pytest.mark.parametrize("name", tasks.TASK_NAMES)
def test_predict_refuses_another_tasks_export(name, tiny_run):
    other = "acceleration" if name != "acceleration" else "sentiment"
    export = tiny_run(other) / "export"
    result = run_cli(name, "predict", "--model", str(export), "x")
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"exported by the {other!r} task" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("name", tasks.TASK_NAMES)
def test_every_endpoint_answers_batches_of_0_1_and_300_items(name, tiny_run):
    import numpy as np
    import tensorflow as tf

    task_class = tasks.load_task(name)
    workdir = tiny_run(name)
    task = task_class(task_class.Config.from_preset("tiny"))
    examples = task.export_examples(task.load_data(None, workdir))  # the synthetic files are already there
    exported = tf.saved_model.load(str(workdir / "export"))
    for endpoint, arguments in examples.items():
        for count in (0, 1, 300):
            # Every argument with a batch axis is tiled to `count` items; scalars (e.g. steps) stay.
            batch = [np.take(np.asarray(a), np.arange(count) % len(a), axis=0) if np.ndim(a) else a
                     for a in arguments]
            outputs = getattr(exported, endpoint)(*[tf.constant(a) for a in batch])
            for key, value in outputs.items():
                assert value.shape[0] == count, f"{endpoint}[{key}] for {count} items has shape {value.shape}"
                if value.dtype.is_floating:
                    assert bool(tf.reduce_all(tf.math.is_finite(value))), f"{endpoint}[{key}] is not finite"


@pytest.mark.parametrize("name", tasks.TASK_NAMES)
def test_the_console_tells_a_newcomer_what_happened(name, tiny_run):
    workdir = tiny_run(name)
    stdout = (workdir.parent / f"{workdir.name}.stdout.txt").read_text()
    stderr = (workdir.parent / f"{workdir.name}.stderr.txt").read_text()
    task_class = tasks.load_task(name)
    summary = stdout[stdout.index(f"{name} (tiny) → "):]
    first_row = summary.splitlines()[2]
    assert first_row.split()[0] == task_class.primary_metric and "← primary" in first_row
    assert "model" in summary.splitlines()[1]  # the model's column beside the baselines'
    assert ("best epoch: " in stdout) or ("training did not help" in stdout)
    assert "smoke test (--preset tiny)" in stdout and f"files in {workdir}" in stdout
    assert f"try the exported model: python run.py {name} predict --model" in stdout
    assert (workdir / "learning_curves.png").stat().st_size > 5_000
    # TensorFlow's CPU start-up lines are filtered; Python's own logging still reaches stderr.
    for noise in ("absl::InitializeLog", "failed call to cuInit", "Could not find cuda drivers"):
        assert noise not in stderr
    assert " INFO " in stderr


def test_epoch_numbers_agree_between_the_csv_and_best_json(tiny_run):
    import csv

    workdir = tiny_run("acceleration")
    with open(workdir / "logs" / "training.csv") as handle:
        epochs = [int(row["epoch"]) for row in csv.DictReader(handle)]
    assert epochs[0] == 1 and epochs == list(range(1, len(epochs) + 1))  # as Keras prints "Epoch 1/N"
    best = json.loads((workdir / "checkpoints" / "best.json").read_text())["epoch"]
    assert best == 0 or best in epochs  # 0 = the warm start, before any epoch


@pytest.mark.parametrize("name", tasks.TASK_NAMES)
def test_every_recurrent_layer_of_every_task_is_cudnn_eligible(name, tiny_run):
    import keras

    import tasks as registry
    from common import training

    registry.load_task(name)  # registers the task's custom layers before loading the checkpoint
    model = keras.saving.load_model(tiny_run(name) / "checkpoints" / "best.keras", compile=False)
    report = training.recurrent_layers_report(model)
    assert report, f"{name}'s model has no LSTM/GRU"
    assert all(entry["cudnn_eligible"] for entry in report), report
