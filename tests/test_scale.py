"""The real-scale path on a CPU: every task under MirroredStrategy on 2 logical CPUs with mixed
precision (tiny preset), every task's train step compiled by XLA, and the learning-rate scaling rule.

XLA and MirroredStrategy are tested apart: on logical CPU devices XLA cannot use a variable placed on
another device (TensorFlow's known XLA issue "tf.Variable on a different device"); on GPUs they combine."""

import json

import pytest

import tasks
from conftest import run_cli


@pytest.mark.parametrize("name", tasks.TASK_NAMES)
def test_every_task_trains_mirrored_with_mixed_precision(name, tmp_path):
    result = run_cli(name, "--preset", "tiny", "--workdir", str(tmp_path), "--set", "strategy=mirrored",
                     "--set", "logical_cpus=2", "--set", "precision=mixed_float16", "--set", "epochs=1")
    assert result.returncode == 0, result.stderr[-4000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["devices"]["replicas"] == 2 and results["devices"]["dtype_policy"] == "mixed_float16"
    losses = results["training"]["history"]["loss"]
    assert losses and all(loss == loss and abs(loss) != float("inf") for loss in losses)  # finite
    primary = results["metrics"]["model"][results["metrics"]["primary"]]
    assert primary == primary  # not NaN
    assert results["export"]["endpoints"], "the export (float32 outputs, checked in a fresh process) worked"


@pytest.mark.parametrize("name", tasks.TASK_NAMES)
def test_every_task_train_step_compiles_with_xla(name, tiny_run):
    import keras

    from common import training
    from common.preprocessor import preprocessor_dir

    task_class = tasks.load_task(name)
    workdir = tiny_run(name)
    task = task_class(task_class.Config.from_preset("tiny", {"jit_compile": True}))
    data = task.load_data(None, workdir)  # the synthetic files of the session's tiny run
    preprocessor = task.Preprocessor.load(preprocessor_dir(workdir))
    train, _ = task.datasets(data, preprocessor)
    inputs, targets = next(iter(train))
    model = task.build_model(data, preprocessor)
    assert model.jit_compile is True and training.model_report(model)["jit_compile"]["effective"]
    first = model.train_on_batch(inputs, targets, return_dict=True)
    second = model.train_on_batch(inputs, targets, return_dict=True)
    assert all(keras.ops.isfinite(value) for value in (first["loss"], second["loss"]))


def test_learning_rate_scales_with_the_replicas_only_when_asked():
    import tensorflow as tf

    from common import training
    from common.config import BaseConfig

    plain = BaseConfig.from_preset("default", {"learning_rate": 0.001})
    scaled = BaseConfig.from_preset("default", {"learning_rate": 0.001, "scale_learning_rate": True})
    strategy = tf.distribute.get_strategy()
    with strategy.scope():
        assert training.learning_rate(plain) == 0.001
        assert training.learning_rate(scaled) == 0.001 * strategy.num_replicas_in_sync


def test_even_batches_keep_each_batch_shape_and_a_multiple_of_the_replicas():
    import numpy as np
    import tensorflow as tf

    from common.training import _even_batches

    # Length-bucketed batches: widths differ between batches, sizes are not multiples of 2.
    batches = [np.ones((5, 7), np.int32), np.ones((4, 3), np.int32), np.ones((1, 9), np.int32)]
    dataset = tf.data.Dataset.from_generator(
        lambda: ((b, np.zeros(len(b), np.float32)) for b in batches),
        output_signature=(tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None], tf.float32)))
    shapes = [(x.shape[0], x.shape[1], y.shape[0]) for x, y in _even_batches(dataset, 2)]
    assert shapes == [(4, 7, 4), (4, 3, 4)]  # the single-example batch is dropped


_MULTI_WORKER_PROBE = """
import json, os, sys
os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": sys.argv[2].split(",")},
                                      "task": {"type": "worker", "index": int(sys.argv[1])}})
import keras, numpy as np, tensorflow as tf
strategy = tf.distribute.MultiWorkerMirroredStrategy()
x = np.arange(64 * 4, dtype="float32").reshape(64, 4) / 256.0
data = tf.data.Dataset.from_tensor_slices((x, x.sum(axis=1, keepdims=True))).batch(16).repeat()
with strategy.scope():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(loss="mse", optimizer="sgd")
model.fit(data, epochs=1, steps_per_epoch=2, verbose=0)
print("FIT_OK")
"""


@pytest.mark.xfail(strict=True, reason="keras-team/keras#20585: Keras 3's TF trainer cannot fit under "
                   "MultiWorkerMirroredStrategy (its symbolic build and its scalar-log reduce both fail), so the "
                   "suite has no strategy=multi_worker yet; when this starts passing, wire it into make_strategy")
def test_upstream_keras_fits_under_multi_worker_mirrored_strategy(tmp_path):
    """Two worker processes on localhost, plain Keras: the upstream blocker of multi-worker training, watched."""
    import socket
    import subprocess
    import sys

    ports = []
    for _ in range(2):
        with socket.socket() as probe:
            probe.bind(("localhost", 0))
            ports.append(probe.getsockname()[1])
    cluster = ",".join(f"localhost:{port}" for port in ports)
    script = tmp_path / "probe.py"
    script.write_text(_MULTI_WORKER_PROBE)
    workers = [subprocess.Popen([sys.executable, str(script), str(index), cluster], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for index in range(2)]
    outputs = []
    for worker in workers:
        try:
            outputs.append(worker.communicate(timeout=120))
        except subprocess.TimeoutExpired:
            worker.kill()
            outputs.append(worker.communicate())
    assert all("FIT_OK" in out for out, _ in outputs), outputs[0][1][-2000:]
