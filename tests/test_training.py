"""Training glue: resume after a hard kill, MirroredStrategy over 2 logical CPUs, atomic checkpoints."""

import csv
import json
import subprocess
import sys
import textwrap

from conftest import ROOT, run_cli

# A tiny regression fit through common.training.fit; with KILL_AFTER_EPOCH=k the process SIGKILLs
# itself right after epoch k's callbacks ran (backup written), as a crash or an OOM kill would.
_SCRIPT = textwrap.dedent(
    """
    import json, os, signal, sys
    sys.path.insert(0, sys.argv[1])
    import numpy as np, keras
    from common import training, pipelines
    from common.config import BaseConfig

    config = BaseConfig.from_preset("default", {"epochs": 5, "early_stopping_patience": 0, "tensorboard": False,
                                                "batch_size": int(os.environ.get("BATCH_SIZE", 16))})
    training.setup(config)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 4)).astype("float32"); y = x @ np.array([1.0, -2.0, 0.5, 3.0], "float32")
    train = pipelines.from_arrays(x, y, 16, shuffle=True, seed=0)
    validation = pipelines.from_arrays(x[:32], y[:32], 16, shuffle=False, seed=0)
    inputs = keras.Input((4,)); model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    training.compile_model(model, config, loss="mse")

    class Kill(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == int(os.environ.get("KILL_AFTER_EPOCH", -1)):
                os.kill(os.getpid(), signal.SIGKILL)

    summary = training.fit(model, train, validation, config, sys.argv[2], extra_callbacks=[Kill()])
    print(json.dumps({"epochs_run": summary["epochs_run_this_process"], "resumed": summary["resumed"]}))
    """
)


def _train(workdir, kill_after=None, batch_size=16):
    env = {"TF_CPP_MIN_LOG_LEVEL": "2", "PATH": "/usr/bin:/bin", "BATCH_SIZE": str(batch_size)}
    if kill_after is not None:
        env["KILL_AFTER_EPOCH"] = str(kill_after)
    return subprocess.run([sys.executable, "-c", _SCRIPT, str(ROOT), str(workdir)], capture_output=True, text=True,
                          env=env, timeout=300)


def test_a_killed_run_resumes_with_the_remaining_epochs(tmp_path):
    killed = _train(tmp_path, kill_after=1)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert (tmp_path / "checkpoints" / "best.keras").exists()
    resumed = _train(tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    # epochs 3..5, not 1..5
    assert json.loads(resumed.stdout.strip().splitlines()[-1]) == {"epochs_run": 3, "resumed": True}
    with open(tmp_path / "logs" / "training.csv") as handle:
        epochs = [int(row["epoch"]) for row in csv.DictReader(handle)]
    assert epochs == [1, 2, 3, 4, 5]  # numbered as the console prints them ("Epoch 1/5")
    assert not (tmp_path / "backup").exists() or not any((tmp_path / "backup").iterdir())  # cleaned up after success


def test_a_killed_run_with_a_changed_config_starts_afresh(tmp_path):
    assert _train(tmp_path, kill_after=1).returncode == -9
    changed = _train(tmp_path, batch_size=32)
    assert changed.returncode == 0, changed.stderr[-2000:]
    assert json.loads(changed.stdout.strip().splitlines()[-1]) == {"epochs_run": 5, "resumed": False}
    assert "different config" in changed.stderr
    with open(tmp_path / "logs" / "training.csv") as handle:
        assert [int(row["epoch"]) for row in csv.DictReader(handle)] == [1, 2, 3, 4, 5]  # this run only
    assert (tmp_path / "logs" / "training.previous.csv").exists()


def test_an_initial_candidate_is_kept_when_no_epoch_beats_it(tmp_path):
    import keras
    import numpy as np

    from common import pipelines, training
    from common.config import BaseConfig

    config = BaseConfig.from_preset("default", {"epochs": 2, "tensorboard": False,
                                                "early_stopping_patience": 0})
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype("float32")
    y = x @ np.array([1.0, 2.0, -1.0], "float32") + 0.1 * rng.normal(size=64).astype("float32")
    data = pipelines.from_arrays(x, y, 16, shuffle=True, seed=0)
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.get_layer(index=1).set_weights([np.array([[1.0], [2.0], [-1.0]], "float32"), np.zeros(1, "float32")])
    # A step size far beyond stability: every epoch ends worse than the (near-optimal) start.
    training.compile_model(model, config, loss="mse", optimizer=keras.optimizers.SGD(learning_rate=5.0))
    summary = training.fit(model, data, data, config, tmp_path, initial_candidate=True)
    assert summary["initial_val_loss"] < 0.02
    assert min(summary["history"]["val_loss"]) > summary["initial_val_loss"]  # training only made it worse
    np.testing.assert_allclose(model.get_layer(index=1).get_weights()[0].ravel(), [1.0, 2.0, -1.0], atol=1e-6)
    assert json.loads((tmp_path / "checkpoints" / "best.json").read_text())["epoch"] == 0
    # The starting value is kept for a resume (learning_curves.png marks it) beside the curves' picture.
    assert json.loads((tmp_path / "checkpoints" / "initial.json").read_text()) == {
        "monitor": "val_loss", "value": summary["initial_val_loss"]}
    assert (tmp_path / "learning_curves.png").stat().st_size > 5_000


def test_learning_curves_label_every_axis_and_mark_the_starting_value():
    import matplotlib.pyplot as plt

    from common.training import START_LABEL, learning_curves_figure

    rows = [{"epoch": str(epoch), "loss": str(loss), "rmse": str(loss ** 0.5), "val_loss": str(loss + 0.1),
             "val_rmse": str((loss + 0.1) ** 0.5), "learning_rate": "0.001"} for epoch, loss in ((1, 0.5), (2, 0.4))]
    figure = learning_curves_figure(rows, "val_loss", initial=0.3, units={"rmse": "g"})
    try:
        loss_axis, rmse_axis = figure.axes
        assert [loss_axis.get_ylabel(), rmse_axis.get_ylabel()] == ["loss", "rmse (g)"]  # the unit where one is given
        start = [line for line in loss_axis.get_lines() if line.get_label() == START_LABEL]
        assert len(start) == 1 and start[0].get_linestyle() == "--"
        assert start[0].get_xdata()[0] == 0 and list(start[0].get_ydata()) == [0.3, 0.3]  # epoch 0, a level line
        assert START_LABEL in [text.get_text() for text in loss_axis.get_legend().get_texts()]
        assert "(0 = before training)" in loss_axis.get_xlabel()
        assert all(line.get_label() != START_LABEL for line in rmse_axis.get_lines())  # only the monitored panel
    finally:
        plt.close(figure)
    plain = learning_curves_figure(rows, "val_loss")  # no warm start: no start mark, the labels still there
    try:
        assert [axis.get_ylabel() for axis in plain.axes] == ["loss", "rmse"]
        assert all(line.get_label() != START_LABEL for axis in plain.axes for line in axis.get_lines())
    finally:
        plt.close(plain)


def test_mirrored_strategy_over_two_logical_cpus(tmp_path):
    result = run_cli(
        "acceleration", "--preset", "tiny", "--workdir", str(tmp_path), "--steps", "train,evaluate",
        "--set", "strategy=mirrored", "--set", "logical_cpus=2",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["devices"]["replicas"] == 2
    assert len([d for d in results["devices"]["logical"] if "CPU" in d]) == 2
    assert results["metrics"]["model"]["mse"] > 0


def test_a_resumed_run_loads_its_preprocessor_and_a_fresh_run_refits(tmp_path, monkeypatch):
    import dataclasses

    import pytest

    from common import training
    from tasks.acceleration.task import TASK

    task = TASK(TASK.Config.from_preset("tiny"))
    data = task.load_data(None, tmp_path)
    first, resumed = training.fitted_preprocessor(task, data, tmp_path)
    assert not resumed and (tmp_path / "checkpoints" / "preprocessor" / "preprocessor.json").is_file()

    (tmp_path / "backup").mkdir()
    (tmp_path / "backup" / "training_metadata.json").write_text("{}")  # what a killed run leaves behind
    fits = []
    original_fit = task.Preprocessor.fit.__func__
    monkeypatch.setattr(task.Preprocessor, "fit", classmethod(lambda cls, *a: fits.append(1) or original_fit(cls, *a)))
    second, resumed = training.fitted_preprocessor(task, data, tmp_path)
    assert resumed and not fits, "a resumed run must load the saved preprocessor, not refit it"
    assert (second.mean, second.std) == (first.mean, first.std)

    task.config = dataclasses.replace(task.config, ridge_order=100)  # another config: start afresh
    third, resumed = training.fitted_preprocessor(task, data, tmp_path)
    assert not resumed and fits == [1] and sorted(third.ridges) == [100, 2500]
    with pytest.raises(Exception, match="fitted by task 'acceleration', not 'sentiment'"):
        type("Other", (task.Preprocessor,), {"task": "sentiment"}).load(tmp_path / "checkpoints" / "preprocessor")
