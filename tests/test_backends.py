"""Keras backends (issue 13): each task's model, trained under TensorFlow, loaded, evaluated and trained again
under Keras' JAX backend on the CPU (tests/backend_probe.py in a child process: the backend is fixed at import).

Agreement: the same checkpoint gives the same first-batch outputs (float tolerance) and the same evaluation
numbers under both backends (sampled text excepted: see SAMPLED). Every task's model, losses, metrics and decoders
are keras.ops; TensorFlow remains in the tf.data input and the SavedModel export."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import tasks
from conftest import ROOT

jax = pytest.importorskip("jax", reason="the JAX tests need tests/requirements.txt (pip install -r it)")

# Metrics of sampled text: each backend draws with its own stateless generator (tasks/language_model/model.py
# _categorical: TensorFlow's stateless_categorical, kept for the README's figures, or jax.random), so they agree
# only in distribution. They are checked as rates in [0, 1]; everything else must agree.
SAMPLED = {"language_model": ("sampled_lines_",)}


def _tensorflow_first_outputs(name, workdir):
    from backend_probe import first_outputs
    from common import training
    from common.preprocessor import preprocessor_dir

    task_class = tasks.load_task(name)
    task = task_class(task_class.Config.from_preset("tiny"))
    data = task.load_data(None, workdir)
    preprocessor = task.Preprocessor.load(preprocessor_dir(workdir))
    return first_outputs(training.load_best(workdir), task.datasets(data, preprocessor)[1])  # as the child does


def _under_jax(*arguments, timeout=600):
    """``python ARGUMENTS`` in a child process with Keras' JAX backend on the CPU (the project root importable)."""
    environment = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, *map(str, arguments)], cwd=ROOT, env=environment, capture_output=True,
                          text=True, timeout=timeout)


def _numbers(metrics):
    return {key: value for key, value in metrics.items() if isinstance(value, (int, float))}


@pytest.mark.parametrize("name", tasks.TASK_NAMES)
def test_model_loads_evaluates_and_trains_under_jax_like_under_tensorflow(name, tiny_run, tmp_path):
    workdir = tiny_run(name)
    result = _under_jax(ROOT / "tests" / "backend_probe.py", name, workdir, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe["backend"] == "jax" and probe["devices"]["keras_backend"] == "jax"  # what results.json records
    assert probe["devices"]["jax_devices"] and not probe["devices"]["gpu_used"]
    np.testing.assert_allclose(np.load(tmp_path / "predictions.npy"), _tensorflow_first_outputs(name, workdir),
                               rtol=1e-4, atol=1e-5)
    expected = _numbers(json.loads((workdir / "results.json").read_text())["metrics"]["model"])
    measured = _numbers(probe["metrics"]["model"])
    assert expected and measured.keys() == expected.keys()
    for key, value in expected.items():
        if key.startswith(SAMPLED.get(name, ())):
            assert 0 <= measured[key] <= 1, key
            continue
        assert measured[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
    losses = next(iter(probe["history"].values()))
    assert losses and all(np.isfinite(losses)), probe["history"]


def test_run_under_jax_trains_evaluates_and_exports_in_one_command(tmp_path):
    """The user's path: KERAS_BACKEND=jax python run.py ... trains and evaluates under JAX, then exports the saved
    checkpoint itself through a child process with the TensorFlow backend (results.json, export/, the closing lines);
    the TensorFlow backend evaluates that checkpoint to the same scores."""
    from conftest import run_cli

    workdir = tmp_path / "run"
    result = _under_jax(ROOT / "run.py", "acceleration", "--preset", "tiny", "--workdir", workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((workdir / "results.json").read_text())
    assert results["devices"]["keras_backend"] == "jax" and results["export"]["endpoints"]
    assert results["devices"]["distribution"]["processes"] == 1
    assert (workdir / "export" / "saved_model.pb").is_file() and "try the exported model" in result.stdout
    evaluated = run_cli("acceleration", "--preset", "tiny", "--workdir", str(workdir), "--steps", "evaluate")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    after = json.loads((workdir / "results.json").read_text())
    assert after["devices"]["keras_backend"] == "tensorflow"
    for key, value in _numbers(results["metrics"]["model"]).items():  # the JAX-trained model, evaluated by TF
        assert after["metrics"]["model"][key] == pytest.approx(value, rel=1e-4, abs=1e-6), key


def test_greedy_and_beam_search_agree_across_backends_and_with_the_python_reference():
    """common.decoding on a keras.ops step function: under JAX and TensorFlow the same tokens and scores, beam
    search equals the step-by-step Python reference, and width 1 equals greedy."""
    import decoding_cases

    result = _under_jax(ROOT / "tests" / "decoding_cases.py", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    under_jax = json.loads(result.stdout.strip().splitlines()[-1])
    under_tensorflow = decoding_cases.results()
    for found in (under_jax, under_tensorflow):
        assert found["beam1_0.0"] == found["greedy"]
        np.testing.assert_allclose(found["beam1_0.0_score"], found["greedy_score"], rtol=1e-5)
        for key in ("1_0.0", "3_0.0", "3_0.6"):
            assert [row for row, _ in found[f"python{key}"]] == found[f"beam{key}"], key
            np.testing.assert_allclose([score for _, score in found[f"python{key}"]], found[f"beam{key}_score"],
                                       rtol=1e-5, atol=1e-5)
    assert under_jax.keys() == under_tensorflow.keys()
    for key, value in under_tensorflow.items():
        if key.endswith("score"):
            np.testing.assert_allclose(under_jax[key], value, rtol=1e-5, atol=1e-5)
        elif not key.startswith("python"):
            assert under_jax[key] == value, key
    assert len({tuple(map(tuple, under_tensorflow[k])) for k in ("greedy", "beam3_0.0", "beam3_0.6")}) > 1, \
        "the cases must tell greedy from beam search"


def test_gpu_bench_quick_runs_every_model_under_jax_without_tensorflow(tmp_path):
    """run.py gpu-bench is what runs on the GPU machine (JAX, no TensorFlow): with --quick every task's model
    builds from its keras-only module, trains in every variant and decodes, with TensorFlow unimportable."""
    output = tmp_path / "bench.json"
    result = _under_jax(ROOT / "tests" / "without_tensorflow.py", ROOT / "run.py", "gpu-bench", "--quick",
                        "--output", output)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    bench = json.loads(output.read_text())
    assert bench["devices"]["keras_backend"] == "jax"  # and TensorFlow could not be imported (the runner)
    assert set(bench["tasks"]) == set(tasks.TASK_NAMES)
    for name, rows in bench["tasks"].items():
        variants = {key: row for key, row in rows.items() if isinstance(row, dict)}
        assert {"float32", "mixed_float16"} <= variants.keys() and variants.keys() & {"no_mask", "generic_loop"}, name
        for variant, row in variants.items():
            assert "error" not in row, (name, variant, row)
            speed = row.get("steps_per_second", row.get("sentences_per_second"))
            assert speed > 0 and row.get("finite_loss", True), (name, variant, row)
    assert {name for name, rows in bench["tasks"].items() if "beam_search" in rows} == {"translation", "captioning"}
    from conftest import run_cli

    table = run_cli("gpu-bench", "--table", output, output)  # the README's table: a GPU run beside a CPU run
    assert table.returncode == 0, table.stderr[-2000:]
    rows = [line for line in table.stdout.splitlines() if line.startswith("| ") and "task" not in line]
    assert [row.split(" | ")[0][2:] for row in rows] == list(bench["tasks"]) and "×1.00" in table.stdout


def test_gpu_bench_rejects_an_unknown_task_a_bad_precision_list_and_a_table_of_other_results(tmp_path):
    from conftest import run_cli

    result = run_cli("gpu-bench", "--tasks", "acceleration,nope", "--output", tmp_path / "b.json")
    assert result.returncode == 2 and "nope" in result.stderr and not (tmp_path / "b.json").exists()
    result = run_cli("gpu-bench", "--precisions", "mixed_float16,float32", "--output", tmp_path / "b.json")
    assert result.returncode == 2 and "float32 first" in result.stderr and not (tmp_path / "b.json").exists()
    other = tmp_path / "results.json"
    other.write_text(json.dumps({"task": "acceleration", "metrics": {}}))
    result = run_cli("gpu-bench", "--table", other)
    assert result.returncode == 2 and "gpu-bench results" in result.stderr and str(other) in result.stderr
    other.write_text("{not json")
    result = run_cli("gpu-bench", "--table", other)
    assert result.returncode == 2 and "not valid JSON" in result.stderr
