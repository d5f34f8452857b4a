"""Acceleration task: readers and their errors, leak-free splits, baselines, rolling generation, e2e."""

import json
import pickle
from pathlib import Path

import keras
import numpy as np
import pandas
import pytest
import scipy.io
import tensorflow as tf

from common.metrics.regression import regression_errors
from conftest import run_cli
from data import DataError
from data.signal import read_signal
from data.synthetic import vibration
from tasks.acceleration import evaluation, pipeline
from tasks.acceleration import model as model_lib
from tasks.acceleration.config import HORIZON, WINDOW_SAMPLES, Config

SIGNAL = np.sin(np.arange(3000) / 7.0)


# --- readers -------------------------------------------------------------------------------------

def test_every_format_reads_the_same_signal(tmp_path):
    np.save(tmp_path / "s.npy", SIGNAL[:, None])
    np.savez(tmp_path / "s.npz", DE=SIGNAL[:, None], FE=SIGNAL * 2, sample_rate=np.array(12000))
    pandas.DataFrame({"time": np.arange(3000), "accel": SIGNAL}).to_csv(tmp_path / "s.csv", index=False)
    pandas.Series(SIGNAL).to_pickle(tmp_path / "series.pkl")
    pandas.DataFrame({"accel": SIGNAL, "other": SIGNAL * 3}).to_pickle(tmp_path / "frame.pkl")
    scipy.io.savemat(tmp_path / "s.mat", {"X097_DE_time": SIGNAL[:, None], "X097RPM": np.array([[1797]])})
    cases = [
        ("s.npy", {}), ("s.npz", {"key": "DE"}), ("s.csv", {"column": "accel"}), ("series.pkl", {}),
        ("frame.pkl", {"column": "accel"}), ("s.mat", {"key": "X097_DE_time"}),
    ]
    for name, options in cases:
        signal = read_signal(tmp_path / name, **options)
        assert signal.shape == (3000,) and signal.dtype == np.float64, name
        np.testing.assert_allclose(signal, SIGNAL, rtol=1e-12, err_msg=name)


@pytest.mark.parametrize(
    "writer, options, fragment",
    [
        (lambda p: np.save(p / "x.npy", np.where(np.arange(3000) == 17, np.nan, SIGNAL)), ("x.npy", {}),
         "NaN/inf value(s) (first at sample 17)"),
        (lambda p: np.save(p / "x.npy", np.where(np.arange(3000) == 5, np.inf, SIGNAL)), ("x.npy", {}),
         "first at sample 5"),
        (lambda p: np.save(p / "x.npy", np.zeros((10, 3))), ("x.npy", {}), "expected a 1-D signal"),
        (lambda p: np.savez(p / "x.npz", DE=SIGNAL, FE=SIGNAL), ("x.npz", {}), "choose one with --set signal_key"),
        (lambda p: np.savez(p / "x.npz", DE=SIGNAL), ("x.npz", {"key": "BA"}), "no signal_key 'BA'; available: ['DE']"),
        (lambda p: (p / "x.csv").write_text("a,b\n1,2\n3,oops\n"), ("x.csv", {"column": "b"}), "row 3 holds 'oops'"),
        (lambda p: (p / "x.csv").write_text("a\n"), ("x.csv", {}), "no rows"),
        (lambda p: (p / "x.wav").write_bytes(b"RIFF"), ("x.wav", {}), "unsupported signal format '.wav'"),
        (lambda p: (p / "x.pkl").write_bytes(b"not a pickle"), ("x.pkl", {}), "not a readable pickle"),
        (lambda p: (p / "x.pkl").write_bytes(pickle.dumps({"a": 1})), ("x.pkl", {}), "pickled dict"),
        (lambda p: (p / "x.npz").write_bytes(b"garbage"), ("x.npz", {}), "not a readable .npz"),
        (lambda p: None, ("missing.npy", {}), "no such file"),
    ],
)
def test_reader_errors_name_the_file_and_the_problem(tmp_path, writer, options, fragment):
    writer(tmp_path)
    name, kwargs = options
    with pytest.raises(DataError) as error:
        read_signal(tmp_path / name, **kwargs)
    assert fragment in str(error.value) and name in str(error.value)


def test_a_signal_too_short_for_one_window_is_a_clear_error():
    with pytest.raises(DataError, match="one example needs 2600"):
        pipeline.split_by_time(np.zeros(10_000), Config(), source="short.npy")


# --- splits and windows --------------------------------------------------------------------------

def test_splits_are_time_ordered_and_share_no_sample():
    signal = np.arange(40_000, dtype=np.float64)  # the value is the sample's index
    splits = pipeline.split_by_time(signal, Config())
    used = []
    for part, stride in ((splits.train, 50), (splits.validation, HORIZON), (splits.test, HORIZON)):
        inputs, targets = pipeline.windows(part, stride)
        used.append(set(np.concatenate([inputs.ravel(), targets.ravel()]).astype(int)))
        np.testing.assert_array_equal(targets[:, 0], inputs[:, -1] + 1)  # target = the next samples
    assert not (used[0] & used[1]) and not (used[1] & used[2]) and not (used[0] & used[2])
    assert max(used[0]) < min(used[1]) and max(used[1]) < min(used[2])
    test_targets = pipeline.windows(splits.test)[1].ravel()
    assert len(np.unique(test_targets)) == len(test_targets)  # every test sample scored at most once


def test_dataset_yields_the_same_examples_as_the_arrays():
    part = np.arange(6000, dtype=np.float32)
    batches = list(pipeline.dataset(part, 100, 4, shuffle=False, seed=0))
    inputs = np.concatenate([b[0].numpy() for b in batches])
    targets = np.concatenate([b[1].numpy() for b in batches])
    expected_inputs, expected_targets = pipeline.windows(part, 100)
    np.testing.assert_array_equal(inputs.reshape(len(inputs), -1), expected_inputs)
    np.testing.assert_array_equal(targets, expected_targets)
    assert inputs.shape[1:] == (25, 100)


# --- metrics and baselines -----------------------------------------------------------------------

def test_regression_errors_known_answer():
    errors = regression_errors([[1.0, 2.0], [3.0, 4.0]], [[1.0, 0.0], [3.0, 8.0]], target_variance=10.0)
    assert errors["mse"] == pytest.approx(5.0) and errors["rmse"] == pytest.approx(5.0**0.5)
    assert errors["mae"] == pytest.approx(1.5) and errors["nmse"] == pytest.approx(0.5)


def test_baselines():
    windows = np.tile(np.arange(WINDOW_SAMPLES, dtype=float), (2, 1))
    np.testing.assert_array_equal(model_lib.persistence(windows), windows[:, -HORIZON:])
    assert np.all(model_lib.constant_mean(windows, 0.25) == 0.25)


def test_ridge_recovers_a_linear_process():
    # x[t] = 1.6 x[t-1] - 0.8 x[t-2] + noise is linear; ridge AR must beat persistence by far.
    rng = np.random.default_rng(0)
    signal = np.zeros(30_000)
    for t in range(2, len(signal)):
        signal[t] = 1.6 * signal[t - 1] - 0.8 * signal[t - 2] + rng.normal()
    splits = pipeline.split_by_time(signal, Config())
    ridge = model_lib.RidgeAutoregression(50, splits.train.mean(), splits.train.std())
    ridge.fit(pipeline.windows(splits.train, 20), pipeline.windows(splits.validation))
    inputs, targets = pipeline.windows(splits.test)
    ridge_mse = np.mean((ridge.predict(inputs) - targets) ** 2)
    persistence_mse = np.mean((model_lib.persistence(inputs) - targets) ** 2)
    # The first predicted sample should be near the one-step innovation variance (1.0; the signal's
    # variance is about 13); the ridge strength is picked on only ~20 validation windows, so allow 1.6.
    first_sample_mse = np.mean((ridge.predict(inputs)[:, 0] - targets[:, 0]) ** 2)
    assert first_sample_mse < 1.6 and ridge_mse < 0.8 * persistence_mse


# --- recursive generation ------------------------------------------------------------------------

def test_rolling_forecast_feeds_each_output_back_in():
    windows = np.arange(2 * WINDOW_SAMPLES, dtype=np.float32).reshape(2, WINDOW_SAMPLES)
    seen = []

    def predictor(window):  # last input sample + 1 .. + 100: depends on the newest samples only
        seen.append(window.numpy().copy())
        return window[:, -1:] + tf.range(1, HORIZON + 1, dtype=tf.float32)

    generated = keras.ops.convert_to_numpy(model_lib.rolling_forecast(predictor, windows, 4))
    assert generated.shape == (2, 4, HORIZON)
    for k in range(1, 4):
        # step k's input holds step k-1's output
        np.testing.assert_array_equal(seen[k][:, -HORIZON:], generated[:, k - 1])
        np.testing.assert_array_equal(seen[k][:, :-HORIZON], seen[k - 1][:, HORIZON:])  # and the window shifted
    # With a rolling window the extrapolation continues the ramp; without it, every step would repeat.
    np.testing.assert_array_equal(generated.reshape(2, -1)[0], np.arange(WINDOW_SAMPLES, WINDOW_SAMPLES + 400))


def test_model_is_the_lecture_model_and_cudnn_eligible():
    config = Config.from_preset("paper")
    model = model_lib.build_model(config, mean=0.0, std=1.0)
    assert model.input_shape == (None, 25, 100) and model.output_shape == (None, 100)
    first, second = model.get_layer("lstm_1"), model.get_layer("lstm_2")
    assert (first.units, second.units, first.return_sequences) == (100, 100, True)
    for layer in (first, second):
        cell = layer.cell
        assert cell.activation is keras.activations.tanh and cell.recurrent_activation is keras.activations.sigmoid
        assert cell.recurrent_dropout == 0 and not layer.unroll and cell.use_bias
    assert model.get_layer("dense_relu").activation is keras.activations.relu
    assert model.optimizer.learning_rate.numpy() == pytest.approx(1e-4)
    assert [layer.name for layer in model.layers] == [
        "window", "standardise", "lstm_1", "lstm_2", "dense_relu", "next_samples_standardised", "next_samples"
    ]  # nothing else: the paper preset is exactly the lecture's model


def test_default_adds_a_linear_skip_with_the_same_input_and_output():
    model = model_lib.build_model(Config(), mean=0.0, std=1.0)
    assert model.input_shape == (None, 25, 100) and model.output_shape == (None, 100)
    assert model.get_layer("linear_ar").kernel.shape == (2500, 100)
    assert model.get_layer("lstm_1").units == 100


def test_residual_small_is_one_small_regularised_lstm_on_the_frozen_dense_ridge():
    config = Config.from_preset("residual_small")
    model = model_lib.build_model(config, mean=0.0, std=1.0)
    assert model.input_shape == (None, 25, 100) and model.output_shape == (None, 100)
    names = [layer.name for layer in model.layers]
    assert "lstm_2" not in names and "dense_relu" not in names and not model.get_layer("lstm_1").return_sequences
    assert model.get_layer("lstm_1").units == 32 and model.get_layer("head_dropout").rate == 0.3
    assert model.get_layer("next_samples_standardised").kernel_regularizer.l2 == pytest.approx(1e-3)  # std 1
    scaled = model_lib.build_model(config, mean=0.0, std=0.5)  # the penalty follows the loss's units (g^2)
    assert scaled.get_layer("next_samples_standardised").kernel_regularizer.l2 == pytest.approx(0.25e-3)
    assert scaled.optimizer.epsilon == pytest.approx(0.25e-7)  # Adam steps as on a standardised loss
    assert not model.get_layer("linear_ar").trainable
    assert (config.ridge_fit_stride, config.stride, config.ridge_baseline_stride) == (5, 2, 50)
    # The new fields' defaults leave the default model as it was: no head dropout, no head penalty.
    default = model_lib.build_model(Config(), mean=0.0, std=1.0)
    assert "head_dropout" not in [layer.name for layer in default.layers]
    assert default.get_layer("next_samples_standardised").kernel_regularizer is None
    assert model_lib.build_model(Config(), mean=0.0, std=0.5).optimizer.epsilon == pytest.approx(1e-7)


def test_synthetic_signal_is_seeded_and_written_in_the_cwru_layout(tmp_path):
    spec = vibration.VibrationSpec(duration_seconds=1.0, seed=3)
    path = vibration.write_npz(spec, tmp_path / "v.npz")
    again = vibration.generate(spec)
    with np.load(path) as archive:
        assert archive["DE"].shape == (12_000, 1)
        np.testing.assert_array_equal(archive["DE"][:, 0], again)
    assert read_signal(path).shape == (12_000,)  # the scalar sample_rate is not a candidate signal
    assert not np.array_equal(again, vibration.generate(vibration.VibrationSpec(duration_seconds=1.0, seed=4)))


# --- end to end ----------------------------------------------------------------------------------

def test_tiny_run_metrics_files_and_the_exported_model(tiny_run, tmp_path):
    workdir = tiny_run("acceleration")
    results = json.loads((workdir / "results.json").read_text())
    metrics = results["metrics"]
    columns = {"model": metrics["model"], **metrics["baselines"]}
    assert set(metrics["baselines"]) == {"persistence", "mean", "ridge_ar", "ridge_ar_window"}
    for scores in columns.values():
        assert {"mse", "rmse", "nmse", "mse_ratio_vs_persistence"} <= set(scores)
        assert scores["mse_ratio_vs_persistence"] == pytest.approx(scores["mse"] / columns["persistence"]["mse"])
    assert metrics["baselines"]["persistence"]["mse_ratio_vs_persistence"] == 1.0
    assert {k: v["shapes"] for k, v in results["export"]["endpoints"].items()} == {
        "serve": [[2, 100]], "generate": [[2, 300]]}
    assert {"fit_preprocessor", "train", "evaluate", "export"} <= set(results["seconds"])
    assert results["versions"]["tensorflow"].startswith("2.") and results["hardware"]["cpu_count"] >= 1
    assert (workdir / "prediction.png").stat().st_size > 10_000
    assert (workdir / "checkpoints" / "best.keras").exists()
    # Which model was saved is said the same way in results.json and the export's task.json.
    best_epoch = results["training"]["best_epoch"]
    expected = ("warm start: ridge AR on the 2,500-sample window (no training epoch beat it)" if best_epoch == 0
                else f"LSTM (best epoch {best_epoch})")
    assert (metrics["model_name"], metrics["model_is_warm_start"]) == (expected, best_epoch == 0)
    facts = json.loads((workdir / "export" / "task.json").read_text())["facts"]
    assert (facts["model"], facts["best_epoch"]) == (expected, best_epoch)
    assert "ridge_alpha_median" not in metrics and metrics["ridge_ar_alpha_median"] > 0
    assert metrics["warm_start_ridge_alpha_median"] > 0
    with open(workdir / "logs" / "training.csv") as handle:
        assert len(handle.read().strip().splitlines()) == 1 + results["training"]["epochs_run_this_process"]

    signal_file = tmp_path / "probe.npy"
    np.save(signal_file, np.sin(np.arange(3000) / 5.0))
    predicted = run_cli("acceleration", "predict", "--model", str(workdir / "export"), "--json", str(signal_file))
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    answer = json.loads(predicted.stdout.strip().splitlines()[-1])
    assert len(answer["next_samples"]) == 100 and all(np.isfinite(answer["next_samples"]))
    assert answer["model"] == expected  # which model answered, as the export recorded it

    # The exported model equals the in-process model on raw windows of either shape.
    model = keras.saving.load_model(workdir / "checkpoints" / "best.keras")
    window = np.sin(np.arange(WINDOW_SAMPLES) / 5.0).astype(np.float32)[None]
    exported = tf.saved_model.load(str(workdir / "export"))
    flat = exported.serve(tf.constant(window))["next_samples"].numpy()
    stepped = exported.serve(tf.constant(window.reshape(1, 25, 100)))["next_samples"].numpy()
    np.testing.assert_allclose(flat, model.predict(window.reshape(1, 25, 100), verbose=0), atol=1e-5)
    np.testing.assert_allclose(flat, stepped, atol=1e-6)
    with pytest.raises(tf.errors.InvalidArgumentError, match="expected windows of 2500 samples"):
        exported.serve(tf.constant(np.zeros((1, 2000), np.float32)))


def test_preprocessor_round_trips_its_statistics_and_ridges(tmp_path):
    from tasks.acceleration.task import TASK

    task = TASK(Config.from_preset("tiny"))
    data = task.load_data(None, tmp_path / "work")
    fitted = pipeline.Preprocessor.fit(task, data, tmp_path / "work")
    fitted.save(tmp_path / "pre")
    loaded = pipeline.Preprocessor.load(tmp_path / "pre")
    assert (loaded.mean, loaded.std) == (fitted.mean, fitted.std)
    inputs, _ = pipeline.windows(data.part("test"))
    for order in (task.config.ridge_order, WINDOW_SAMPLES):
        np.testing.assert_array_equal(loaded.ridge(order).predict(inputs), fitted.ridge(order).predict(inputs))
        assert loaded.ridge(order).alpha == fitted.ridge(order).alpha


def test_nan_in_the_signal_file_is_a_clear_cli_error(tmp_path):
    bad = tmp_path / "bad.npy"
    np.save(bad, np.where(np.arange(50_000) == 123, np.nan, 0.0))
    result = run_cli("acceleration", "--preset", "tiny", "--data-dir", str(bad), "--workdir", str(tmp_path / "w"))
    assert result.returncode == 2
    assert "bad.npy" in result.stderr and "first at sample 123" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "w" / "results.json").exists()


@pytest.mark.real_data
def test_cwru_recording_trains_and_evaluates(shared_data, tmp_path):
    path = shared_data / "cwru" / "1797_IR_7_DE12.npz"
    signal = read_signal(path, key="DE")
    assert signal.shape == (121_265,)
    result = run_cli(
        "acceleration", "--preset", "tiny", "--data-dir", str(path), "--set", "signal_key=DE",
        "--workdir", str(tmp_path), "--steps", "train,evaluate",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "results.json").read_text())["metrics"]
    # Persistence is weak on real vibration (about twice the variance): the README's fact, checked.
    assert 1.5 < metrics["baselines"]["persistence"]["nmse"] < 2.6
    assert metrics["test_windows"] == (len(signal) - int(round(len(signal) * 0.85)) - 2600) // 100 + 1


def test_mixed_precision_keeps_float32_outputs_and_jit_compile_is_passed_on():
    config = Config.from_preset("tiny", ["precision=mixed_float16", "jit_compile=true"])
    keras.mixed_precision.set_dtype_policy(config.precision)
    try:
        model = model_lib.build_model(config, mean=0.0, std=1.0)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    assert model.get_layer("lstm_1").compute_dtype == "float16"
    assert model.output.dtype == "float32" and model.get_layer("next_samples").compute_dtype == "float32"
    assert model.jit_compile is True


def test_warm_start_makes_the_untrained_model_the_ridge_predictor():
    rng = np.random.default_rng(1)
    signal = np.sin(np.arange(40_000) / 9.0) + 0.1 * rng.normal(size=40_000)
    splits = pipeline.split_by_time(signal, Config())
    mean, std = float(splits.train.mean()), float(splits.train.std())
    model = model_lib.build_model(Config(), mean=mean, std=std)
    ridge = model_lib.RidgeAutoregression(WINDOW_SAMPLES, mean, std).fit(
        pipeline.windows(splits.train, 50), pipeline.windows(splits.validation)
    )
    model_lib.warm_start_linear_path(model, ridge)
    inputs, _ = pipeline.windows(splits.test)
    untrained = model.predict(inputs.reshape(-1, 25, 100), verbose=0)
    np.testing.assert_allclose(untrained, ridge.predict(inputs), atol=1e-3)  # the LSTM head starts at zero


def test_a_saved_warm_start_is_named_as_such_in_logs_plot_metrics_and_predict(tmp_path, caplog, monkeypatch):
    """When no epoch beat the warm start (best_epoch 0), the saved model is the window ridge, not an LSTM."""
    import logging

    import matplotlib.pyplot as plt

    from common import export, training
    from tasks.acceleration import plots
    from tasks.acceleration.task import TASK

    workdir = tmp_path / "work"
    task = TASK(Config.from_preset("tiny", ["recursive_windows=2"]))
    data = task.load_data(None, workdir)
    preprocessor = pipeline.Preprocessor.fit(task, data, workdir)
    model = task.build_model(data, preprocessor)  # untrained: exactly the warm start
    # What fit records when no epoch beats the initial candidate: it stays the best, as epoch 0.
    training.AtomicBestCheckpoint(training.best_checkpoint_path(workdir)).save_best(model, 1.0, epoch=0)
    caplog.set_level(logging.INFO)
    metrics = task.evaluate(model, data, preprocessor, workdir)
    name = "warm start: ridge AR on the 2,500-sample window (no training epoch beat it)"
    assert (metrics["model_name"], metrics["model_is_warm_start"]) == (name, True)
    assert metrics["model"]["mse"] == pytest.approx(metrics["baselines"]["ridge_ar_window"]["mse"], rel=1e-3)
    # Two ridges, two names; the old shared name is gone.
    assert metrics["ridge_ar_alpha_median"] == preprocessor.ridge(task.config.ridge_order).alpha
    assert metrics["warm_start_ridge_alpha_median"] == preprocessor.warm_start_ridge().alpha
    assert "ridge_alpha_median" not in metrics
    logged = caplog.text
    assert f"evaluating the saved model: {name}" in logged
    assert "| warm start (ridge AR on the 2,500-sample window)" in logged and "| LSTM" not in logged
    assert (workdir / "prediction.png").stat().st_size > 10_000

    inputs, targets = pipeline.windows(data.part("test"))
    predictions = {"lstm": targets, "ridge_ar": targets, "persistence": targets}
    rolling = {"context": inputs[0], "truth": targets[0], "generated": targets[0]}
    figure = plots.prediction_figure(targets, predictions, rolling, 1, model_label="warm start (ridge AR)",
                                     model_name=name)
    try:
        legends = [[text.get_text() for text in axis.get_legend().get_texts()] for axis in figure.axes]
        assert "warm start (ridge AR)" in legends[0] and "LSTM" not in " ".join(legends[0])
        assert "warm start (ridge AR), recursive" in legends[1]
        assert figure._suptitle.get_text() == f"model: {name}"
    finally:
        plt.close(figure)

    # The export records the name; predict says it, as recorded then (not recomputed from the folder now).
    # The tiny run checks the export in a fresh process; here it is skipped.
    monkeypatch.setattr(export, "check_in_fresh_process", lambda path, examples, imports=(): {})
    export.export_task(task, model, preprocessor, data, workdir / "export")
    samples = task.write_samples(data, workdir / "samples")
    training.AtomicBestCheckpoint(training.best_checkpoint_path(workdir)).save_best(model, 0.5, epoch=3)
    assert evaluation.saved_model_description(task.config, workdir)["model_name"] == "LSTM (best epoch 3)"
    answer = export.predict(TASK(task.config), workdir / "export", samples)[0]
    assert answer["model"] == name and len(answer["next_samples"]) == HORIZON
    assert task.export_facts() == {"model": "LSTM (best epoch 3)", "best_epoch": 3, "model_is_warm_start": False}


def test_the_warm_start_name_follows_the_config(tmp_path):
    from tasks.acceleration.task import TASK

    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "best.json").write_text('{"monitor": "val_loss", "value": 1.0, "epoch": 0}')
    dense = TASK(Config.from_preset("tiny", ["ridge_fit_stride=25"]))  # named from the config: no build_model
    assert "refitted on training windows 25 samples apart" in dense.warm_start
    assert evaluation.saved_model_description(dense.config, tmp_path)["model_name"] == (
        "warm start: ridge AR on the 2,500-sample window, refitted on training windows 25 samples apart "
        "(no training epoch beat it)")
    assert TASK(Config.from_preset("paper")).warm_start is None  # no linear path, no warm start
    assert evaluation.saved_model_description(Config.from_preset("tiny"), None) == {
        "model_name": "LSTM", "label": "LSTM", "best_epoch": None, "model_is_warm_start": False}


def test_the_linear_path_can_be_frozen():
    model = model_lib.build_model(Config.from_preset("default", ["linear_skip_trainable=false"]), mean=0.0, std=1.0)
    assert not model.get_layer("linear_ar").trainable and model.get_layer("lstm_1").trainable


def test_predict_warns_when_the_input_scale_is_far_from_the_training_signal(tiny_run, tmp_path):
    workdir = tiny_run("acceleration")
    facts = json.loads((workdir / "export" / "task.json").read_text())["facts"]
    loud = tmp_path / "loud.npy"
    np.save(loud, 10 * facts["train_std"] / np.sqrt(0.5) * np.sin(np.arange(3000) / 5.0))  # 10x the training std
    normal = tmp_path / "normal.npy"
    np.save(normal, np.load(workdir / "samples" / "signal.npy"))
    result = run_cli("acceleration", "predict", "--model", str(workdir / "export"), "--json", str(loud), str(normal))
    assert result.returncode == 0, result.stderr[-2000:]
    answers = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert "10x the training signal's" in answers[0]["warning"] and "warning" not in answers[1]


# --- several recordings, blocked splits, the dense ridge -----------------------------------------

def _two_ramps(folder, first=30_000, second=25_000):
    """Two files whose samples are their own indices (the second offset by 1e6): a window that crossed
    from one file into the other, or across a removed block, would hold a jump."""
    np.save(folder / "a.npy", np.arange(first, dtype=np.float64))
    np.save(folder / "b.npy", 1e6 + np.arange(second, dtype=np.float64))
    return folder / "a.npy", folder / "b.npy"


def _consecutive(inputs, targets):
    examples = np.concatenate([np.asarray(inputs).reshape(len(targets), -1), np.asarray(targets)], axis=1)
    return bool(np.all(np.diff(examples, axis=1) == 1))


@pytest.mark.parametrize("blocks", [0, 5])
def test_windows_of_several_files_never_cross_a_file_or_a_gap(tmp_path, blocks):
    from tasks.acceleration.task import TASK

    first, second = _two_ramps(tmp_path)
    task = TASK(Config.from_preset("tiny", [f"blocks={blocks}", "test_block=2" if blocks else "test_block=-1"]))
    data = task.load_data(tmp_path, tmp_path / "work")  # the folder: both files, in name order
    assert [r.name for r in data.recordings] == ["a.npy", "b.npy"] and data.info["source"] == "files"
    train = data.part("train")
    # The pooled training signal is laid end to end: a start too close to a segment's end would cross.
    assert len(train) == (2 if not blocks else 4)
    batches = list(pipeline.dataset(train, 1, 512, shuffle=False, seed=0))
    inputs = np.concatenate([b[0].numpy() for b in batches])
    targets = np.concatenate([b[1].numpy() for b in batches])
    assert _consecutive(inputs, targets)
    assert len(targets) == pipeline.count_windows(train, 1) == sum(len(s) - 2599 for s in train)
    for split in ("train", "validation", "test"):
        assert _consecutive(*pipeline.windows(data.part(split), 7))
    assert {int(v) // 1_000_000 for v in pipeline.windows(data.part("test"))[1].ravel()} == {0, 1}  # both files
    # The same files as a comma-separated list give the same recordings.
    listed = task.load_data(Path(f"{first},{second}"), tmp_path / "work")
    for one, other in zip(listed.recordings, data.recordings):
        np.testing.assert_array_equal(np.concatenate(one.test), np.concatenate(other.test))


def test_blocked_split_puts_test_and_validation_blocks_where_asked():
    signal = np.arange(50_000, dtype=np.float64)
    for test_block, validation_block in ((0, 1), (2, 1), (-1, 3), (4, 3)):
        config = Config.from_preset("default", ["blocks=5", f"test_block={test_block}"])
        recording = pipeline.split_recording(signal, config, source="s.npy")
        assert recording.bounds["test"] == [[(test_block % 5) * 10_000, (test_block % 5 + 1) * 10_000]]
        assert recording.bounds["validation"] == [[validation_block * 10_000, (validation_block + 1) * 10_000]]
        used = [set(np.concatenate(getattr(recording, split)).astype(int)) for split in ("train", "validation", "test")]
        assert sum(map(len, used)) == 50_000 and not (used[0] & used[1] or used[0] & used[2] or used[1] & used[2])
    default = pipeline.split_recording(signal, Config(), source="s.npy")  # blocks=0: today's fraction split
    old = pipeline.split_by_time(signal, Config())
    for split in ("train", "validation", "test"):
        np.testing.assert_array_equal(getattr(default, split)[0], getattr(old, split))


@pytest.mark.parametrize("overrides, fragment", [
    (["test_block=2"], "test_block=2 needs blocks >= 3"),
    (["blocks=2"], "blocks=2: expected 0"),
    (["blocks=5", "test_block=5"], "block index in [0, 4]"),
    (["blocks=5", "test_block=-2"], "block index in [0, 4]"),
    (["ridge_fit_stride=-1"], "ridge_fit_stride=-1"),
    (["lstm_layers=0"], "lstm_layers=0"),
    (["dense_units=-1"], "dense_units=-1"),
    (["head_dropout=1.0"], "head_dropout=1.0 must be in [0, 1)"),
    (["head_l2=-0.1"], "head_l2=-0.1 >= 0"),
    (["ridge_baseline_stride=-1"], "ridge_baseline_stride=-1"),
])
def test_split_and_ridge_options_are_validated(overrides, fragment):
    from common.config import ConfigError

    with pytest.raises(ConfigError) as error:
        Config.from_preset("default", overrides)
    assert fragment in str(error.value)


def test_blocks_too_small_for_one_example_name_the_file():
    with pytest.raises(DataError, match=r"short.npy: 20000 samples cut into blocks=10"):
        pipeline.split_recording(np.zeros(20_000), Config.from_preset("default", ["blocks=10"]), source="short.npy")


def test_a_bad_entry_of_a_file_list_is_one_error_naming_it(tmp_path):
    from data.signal import signal_files

    good, _ = _two_ramps(tmp_path)
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "sub").mkdir()
    cases = [(f"{good},{tmp_path / 'missing.npy'}", "missing.npy: no such file"),
             (f"{good},{tmp_path / 'notes.txt'}", "notes.txt: unsupported signal format '.txt'"),
             (f"{good},{tmp_path / 'sub'}", "sub: is a folder"),
             (f"{good},,{good}", "an empty entry"),
             (f"{good},{good}", "a.npy: listed twice")]
    for spec, fragment in cases:
        with pytest.raises(DataError) as error:
            signal_files(spec)
        assert fragment in str(error.value), spec
    assert [p.name for p in signal_files(tmp_path)] == ["a.npy", "b.npy"]  # notes.txt and sub/ are skipped
    with pytest.raises(DataError, match="sub: a folder with no signal files"):
        signal_files(tmp_path / "sub")


def test_several_files_give_pooled_and_per_file_metrics(tmp_path):
    from tasks.acceleration.task import TASK

    for name, seed in (("x.npz", 1), ("y.npz", 2)):
        vibration.write_npz(vibration.VibrationSpec(duration_seconds=2.0, seed=seed), tmp_path / name)
    task = TASK(Config.from_preset("tiny", ["ridge_fit_stride=25", "recursive_windows=0"]))
    data = task.load_data(tmp_path, tmp_path / "work")
    preprocessor = pipeline.Preprocessor.fit(task, data, tmp_path / "work")
    model = task.build_model(data, preprocessor)  # untrained: the linear path is the dense ridge
    metrics = task.evaluate(model, data, preprocessor, tmp_path)
    assert set(metrics["per_file"]) == {"x.npz", "y.npz"}
    assert sum(block["test_windows"] for block in metrics["per_file"].values()) == metrics["test_windows"]
    for block in (metrics, *metrics["per_file"].values()):
        assert set(block["baselines"]) == {*evaluation.BASELINES, "ridge_ar_window_dense"}
        assert block["mse_ratio_vs_ridge_ar_window_dense"] == pytest.approx(1.0, abs=1e-3)  # the LSTM head is zero
        assert block["mse_ratio_vs_ridge_ar_window"] == pytest.approx(
            block["model"]["mse"] / block["baselines"]["ridge_ar_window"]["mse"])
    assert data.info["files"]["x.npz"]["test_windows"] == metrics["per_file"]["x.npz"]["test_windows"]


def test_the_baseline_ridges_keep_their_stride_when_the_lstm_stride_changes(tmp_path):
    from tasks.acceleration.task import TASK

    vibration.write_npz(vibration.VibrationSpec(duration_seconds=2.0, seed=1), tmp_path / "x.npz")
    fitted = {}
    for overrides in ([], ["stride=10", "ridge_baseline_stride=100"], ["stride=10"]):
        task = TASK(Config.from_preset("tiny", ["recursive_windows=0", *overrides]))  # tiny: stride 100
        data = task.load_data(tmp_path / "x.npz", tmp_path / "work")
        fitted[len(overrides)] = pipeline.Preprocessor.fit(task, data, tmp_path / "work").ridge(200).weights
    np.testing.assert_array_equal(fitted[2], fitted[0])  # the baselines as before, the LSTM on 10x the windows
    assert not np.array_equal(fitted[1], fitted[0])  # 0 (the default) follows `stride`, as before


def test_streamed_ridge_equals_the_in_memory_fit_and_the_dense_ridge_round_trips(tmp_path):
    rng = np.random.default_rng(2)
    signal = np.sin(np.arange(30_000) / 9.0) + 0.1 * rng.normal(size=30_000)
    splits = pipeline.split_by_time(signal, Config())
    mean, std = float(splits.train.mean()), float(splits.train.std())
    validation = pipeline.windows(splits.validation)
    whole = model_lib.RidgeAutoregression(300, mean, std).fit(pipeline.windows(splits.train, 30), validation)
    streamed = model_lib.RidgeAutoregression(300, mean, std).fit_streamed(
        pipeline.window_batches((splits.train,), 30, batch=97), validation)
    np.testing.assert_allclose(streamed.weights, whole.weights, rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(streamed.alphas, whole.alphas)
    preprocessor = pipeline.Preprocessor(mean, std, {300: whole}, dense=streamed, dense_stride=30)
    preprocessor.save(tmp_path / "pre")
    loaded = pipeline.Preprocessor.load(tmp_path / "pre")
    assert loaded.dense_stride == 30 and loaded.warm_start_ridge() is loaded.dense
    np.testing.assert_array_equal(loaded.dense.weights, streamed.weights)


@pytest.mark.real_data
def test_the_cwru_folder_gives_each_recording_its_own_splits(shared_data, tmp_path):
    from tasks.acceleration.task import TASK

    task = TASK(Config.from_preset("default", ["signal_key=DE"]))
    data = task.load_data(shared_data / "cwru", tmp_path)
    assert len(data.recordings) == 4 and data.info["source"] == "files"
    single = task.load_data(shared_data / "cwru" / "1797_IR_7_DE12.npz", tmp_path)
    pooled_ir = data.info["files"]["1797_IR_7_DE12.npz"]
    assert {k: pooled_ir[k] for k in ("samples", "split_bounds", "test_windows")} == {
        k: single.info[k] for k in ("samples", "split_bounds", "test_windows")}
    assert data.info["test_windows"] == sum(f["test_windows"] for f in data.info["files"].values())


def test_cli_data_dir_list_names_the_missing_entry(tmp_path):
    """--data-dir a.npz,b.npz is checked entry by entry before anything runs (one error line, exit 2)."""
    from conftest import run_cli

    present = tmp_path / "present.npz"
    np.savez(present, DE=np.zeros(10, np.float32))
    result = run_cli("acceleration", "--data-dir", f"{present},{tmp_path / 'absent.npz'}", "--workdir",
                     str(tmp_path / "run"))
    assert result.returncode == 2
    assert "absent.npz' does not exist" in result.stderr and "present.npz'" not in result.stderr
    assert not (tmp_path / "run").exists()
