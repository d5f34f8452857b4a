"""Acceleration-signal prediction with the lecture's 2-layer LSTM.

    python run.py acceleration                    # default preset, synthetic 12 kHz bearing signal
    python run.py acceleration --data-dir ../shared/data/cwru/1797_IR_7_DE12.npz --set signal_key=DE
    python run.py acceleration bench              # suite fit vs plain model.fit, tf.data throughput

Expected (default preset, synthetic data, seed 1234): test nmse 0.134, mse_ratio_vs_persistence
0.067 (persistence nmse 1.98, ridge AR on 500 samples 0.183, on 2,500 samples 0.134); 1.6 min on
2 CPU cores. On ../shared/data/cwru/1797_IR_7_DE12.npz: nmse 0.245, ratio vs persistence 0.136.

Task: from 25 steps x 100 samples (2,500 samples) predict the next 100 samples. The signal is
split by time into train / validation / test; metrics are corpus-level, in the signal's units, on
non-overlapping test targets, for the LSTM and four baselines on the same windows: persistence
(repeat the last 100 samples), the training mean, and ridge linear autoregressions on the last
``ridge_order`` samples and on the whole 2,500-sample window.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import tensorflow as tf

from common.export import write_archive
from common.io import atomic_path
from common.metrics.regression import regression_errors
from common.task import Task, TaskData, TaskError
from data import DataError
from data.signal import read_signal
from data.synthetic import vibration
from tasks.acceleration import model as model_lib
from tasks.acceleration import pipeline
from tasks.acceleration.config import HORIZON, STEP_SAMPLES, WINDOW_SAMPLES, WINDOW_STEPS, Config

logger = logging.getLogger(__name__)

# The ridge baseline's closed-form fit holds its training windows in memory; cap their number.
_MAX_RIDGE_WINDOWS = 20_000
# Recursive generation is scored from at most this many start points spread over the test split.
_MAX_ROLLING_STARTS = 64


class AccelerationTask(Task):
    name = "acceleration"
    description = "next-100-sample prediction of a vibration signal with a 2-layer LSTM"
    Config = Config
    primary_metric = "mse_ratio_vs_persistence"
    higher_is_better = False
    extra_packages = ("pandas", "scipy", "matplotlib")

    # --- data -----------------------------------------------------------------------------------
    def _synthetic_file(self, workdir: Path) -> tuple[Path, str]:
        config = self.config
        spec = vibration.VibrationSpec(
            sample_rate=config.synthetic_sample_rate, duration_seconds=config.synthetic_seconds, seed=config.seed
        )
        path = Path(workdir) / "data" / f"vibration_seed{spec.seed}_{spec.duration_seconds:g}s_{spec.sample_rate}hz.npz"
        if not path.exists():
            vibration.write_npz(spec, path)
        return path, "DE"

    def load_data(self, data_dir: Path | None, workdir: Path) -> TaskData:
        config = self.config
        if data_dir is None:
            path, key = self._synthetic_file(workdir)
            source = "synthetic"
        else:
            path, key, source = Path(data_dir), config.signal_key, "file"
        signal = read_signal(path, key=key if key is not None else config.signal_key, column=config.column)
        splits = pipeline.split_by_time(signal, config, source=str(path))
        # Normalisation statistics from the training part only.
        mean, std = float(np.mean(splits.train)), float(np.std(splits.train))
        if not std > 0:
            raise DataError(f"{path}: the training part of the signal is constant (std 0); nothing to learn")
        ridge_stride = max(config.stride, int(np.ceil(len(splits.train) / _MAX_RIDGE_WINDOWS)))
        train = pipeline.dataset(splits.train, config.stride, config.batch_size, shuffle=True, seed=config.seed)
        validation = pipeline.dataset(splits.validation, HORIZON, config.batch_size, shuffle=False, seed=config.seed)
        test_windows = pipeline.windows(splits.test)
        info = {
            "source": source,
            "path": str(path),
            "samples": int(len(signal)),
            "split_bounds": [list(b) for b in splits.bounds],
            "train_windows": int(len(pipeline.window_starts(len(splits.train), config.stride))),
            "validation_windows": int(len(pipeline.window_starts(len(splits.validation), HORIZON))),
            "test_windows": int(len(test_windows[0])),
            "train_mean": mean,
            "train_std": std,
        }
        extras = {
            "splits": splits,
            "mean": mean,
            "std": std,
            "ridge_train": pipeline.windows(splits.train, ridge_stride),
            "validation_windows": pipeline.windows(splits.validation),
        }
        return TaskData(train=train, validation=validation, test=test_windows, info=info, extras=extras)

    @staticmethod
    def _ridge(data: TaskData, order: int) -> model_lib.RidgeAutoregression:
        """The ridge AR of ``order`` fitted on this data, once per run (the warm start and the
        evaluation's baseline use the same 2,500-sample fit, a 2,501 x 2,501 solve per strength)."""
        fitted = data.extras.setdefault("ridges", {})
        if order not in fitted:
            fitted[order] = model_lib.RidgeAutoregression(order, data.extras["mean"], data.extras["std"]).fit(
                data.extras["ridge_train"], data.extras["validation_windows"]
            )
        return fitted[order]

    # --- model ----------------------------------------------------------------------------------
    def build_model(self, data: TaskData):
        mean, std = data.extras["mean"], data.extras["std"]
        model = model_lib.build_model(self.config, mean=mean, std=std)
        if self.config.linear_skip:
            ridge = self._ridge(data, WINDOW_SAMPLES)
            model_lib.warm_start_linear_path(model, ridge)
            logger.info("linear path warm-started at the ridge solution (median alpha %g)", ridge.alpha)
        return model

    def fit(self, model, data: TaskData, workdir: Path) -> dict[str, Any]:
        from common import training

        # The warm-started model (the ridge predictor) competes as "epoch 0": the LSTM's
        # contribution is kept only if some epoch beats the linear model on validation.
        return training.fit(
            model, data.train, data.validation, self.config, workdir, initial_candidate=self.config.linear_skip
        )

    # --- evaluation -----------------------------------------------------------------------------
    def evaluate(self, model, data: TaskData, workdir: Path) -> dict[str, Any]:
        config = self.config
        inputs, targets = data.test
        target_variance = float(np.var(targets))
        lstm = model.predict(inputs.reshape(-1, WINDOW_STEPS, STEP_SAMPLES), batch_size=256, verbose=0)
        ridge = self._ridge(data, config.ridge_order)
        # The same ridge on the whole 2,500-sample window: the linear part of the default model
        # (linear_skip) starts from it, so it is the baseline that shows what the LSTM adds.
        ridge_window = self._ridge(data, WINDOW_SAMPLES)
        predictions = {
            "lstm": lstm,
            "persistence": model_lib.persistence(inputs),
            "mean": model_lib.constant_mean(inputs, data.extras["mean"]),
            "ridge_ar": ridge.predict(inputs),
            "ridge_ar_window": ridge_window.predict(inputs),
        }
        errors = {name: regression_errors(p, targets, target_variance) for name, p in predictions.items()}
        lstm_mse = errors["lstm"]["mse"]
        metrics: dict[str, Any] = {
            "mse_ratio_vs_persistence": lstm_mse / errors["persistence"]["mse"],
            "mse_ratio_vs_mean": lstm_mse / errors["mean"]["mse"],
            "mse_ratio_vs_ridge_ar": lstm_mse / errors["ridge_ar"]["mse"],
            "mse_ratio_vs_ridge_ar_window": lstm_mse / errors["ridge_ar_window"]["mse"],
            "nmse": errors["lstm"]["nmse"],
            "mse": lstm_mse,
            "rmse": errors["lstm"]["rmse"],
            "models": errors,
            "ridge_alpha_median": ridge.alpha,
            "test_windows": int(len(inputs)),
            "test_target_variance": target_variance,
        }
        rolling = self._rolling_evaluation(model, data.extras["splits"].test)
        if rolling is not None:
            metrics["recursive"] = rolling["metrics"]
        for index in range(min(3, len(inputs))):
            logger.info(
                "test window %d: true next samples %s | LSTM %s | persistence %s",
                index, np.round(targets[index, :4], 4), np.round(lstm[index, :4], 4),
                np.round(predictions["persistence"][index, :4], 4),
            )
        self._plot(Path(workdir) / "prediction.png", inputs, targets, predictions, rolling)
        return metrics

    def _rolling_evaluation(self, model, test: np.ndarray) -> dict | None:
        steps = self.config.recursive_windows
        span = WINDOW_SAMPLES + steps * HORIZON
        if steps < 1 or len(test) < span:
            logger.warning("test split too short for %d recursive windows; skipping the rolling test", steps)
            return None
        starts = np.unique(np.linspace(0, len(test) - span, num=min(_MAX_ROLLING_STARTS, len(test) - span + 1)).astype(int))
        windows = np.stack([test[s : s + WINDOW_SAMPLES] for s in starts])
        truth = np.stack([test[s + WINDOW_SAMPLES : s + span] for s in starts]).reshape(len(starts), steps, HORIZON)
        generated = model_lib.rolling_forecast(
            lambda w: model(tf.reshape(w, (-1, WINDOW_STEPS, STEP_SAMPLES)), training=False), windows, steps
        ).numpy()
        repeated = np.repeat(windows[:, None, -HORIZON:], steps, axis=1)  # persistence, rolled the same way
        per_step = [float(np.mean((generated[:, k] - truth[:, k]) ** 2)) for k in range(steps)]
        per_step_persistence = [float(np.mean((repeated[:, k] - truth[:, k]) ** 2)) for k in range(steps)]
        return {
            "metrics": {
                "windows": steps,
                "starts": int(len(starts)),
                "lstm_mse_by_window": per_step,
                "persistence_mse_by_window": per_step_persistence,
                "lstm_mse": float(np.mean(per_step)),
            },
            "generated": generated[0].reshape(-1),
            "truth": truth[0].reshape(-1),
            "context": windows[0],
        }

    def _plot(self, path: Path, inputs, targets, predictions, rolling) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots(2, 1, figsize=(12, 7))
        shown = min(8, len(targets))  # consecutive test windows: their targets tile the signal
        axis = axes[0]
        axis.plot(targets[:shown].reshape(-1), color="black", linewidth=1.0, label="true")
        for name, style in (("lstm", "tab:red"), ("ridge_ar", "tab:blue"), ("persistence", "tab:gray")):
            axis.plot(predictions[name][:shown].reshape(-1), color=style, linewidth=0.8, label=name)
        axis.set_title(f"one-step: next {HORIZON} samples predicted from the previous {WINDOW_SAMPLES} (test split)")
        axis.set_xlabel("test sample")
        axis.set_ylabel("acceleration (signal units)")
        axis.legend(loc="upper right")
        axis = axes[1]
        if rolling is not None:
            context = rolling["context"][-5 * HORIZON :]
            axis.plot(np.arange(-len(context), 0), context, color="gray", linewidth=0.8, label="input (last 500)")
            axis.plot(rolling["truth"], color="black", linewidth=1.0, label="true")
            axis.plot(rolling["generated"], color="tab:red", linewidth=0.8, label="LSTM, recursive")
            axis.set_title(f"recursive: {self.config.recursive_windows} windows, each prediction fed back as input")
            axis.legend(loc="upper right")
        axis.set_xlabel("samples after the last input sample")
        figure.tight_layout()
        with atomic_path(path, suffix=".png") as temporary:
            figure.savefig(temporary, dpi=100)
        plt.close(figure)

    # --- export ---------------------------------------------------------------------------------
    def export(self, model, data: TaskData, path: Path) -> dict[str, Sequence[Any]]:
        def as_windows(raw):
            # Accepts [B, 2500] or [B, 25, 100] (any rank whose trailing size is 2,500) in signal units.
            raw = tf.cast(raw, tf.float32)
            flat = tf.reshape(raw, (tf.shape(raw)[0], -1))
            check = tf.debugging.assert_equal(
                tf.shape(flat)[1], WINDOW_SAMPLES,
                message=f"expected windows of {WINDOW_SAMPLES} samples: shape (batch, {WINDOW_SAMPLES}) or "
                        f"(batch, {WINDOW_STEPS}, {STEP_SAMPLES})",
            )
            with tf.control_dependencies([check]):  # the check must run before any reshape
                return tf.identity(flat)

        def predict(flat):
            return model(tf.reshape(flat, (-1, WINDOW_STEPS, STEP_SAMPLES)), training=False)

        def serve(windows):
            return {"next_samples": predict(as_windows(windows))}

        def generate(windows, steps):
            generated = model_lib.rolling_forecast(predict, as_windows(windows), steps)
            return {"samples": tf.reshape(generated, (tf.shape(generated)[0], -1))}

        write_archive(
            path,
            track=[model],
            endpoints={
                "serve": (serve, [tf.TensorSpec(None, tf.float32, name="windows")]),
                "generate": (generate, [tf.TensorSpec(None, tf.float32, name="windows"),
                                        tf.TensorSpec([], tf.int32, name="steps")]),
            },
        )
        inputs, _ = data.test
        example = inputs[:2].astype(np.float32)
        return {
            "serve": [example],
            "generate": [example.reshape(-1, WINDOW_STEPS, STEP_SAMPLES), np.int32(3)],
        }

    # --- predict on an exported model -----------------------------------------------------------
    def predict(self, model_dir: Path, inputs: Sequence[str]) -> list[Any]:
        """Each input is a signal file, optionally ``path#KEY`` (npz/mat key or csv/DataFrame column).

        The last 2,500 samples of each file are the window; the result is the next 100 samples.
        """
        if not Path(model_dir).is_dir():
            raise TaskError(f"--model {str(model_dir)!r} is not a folder written by the export step")
        loaded = tf.saved_model.load(str(model_dir))
        results = []
        for item in inputs:
            path, _, key = item.partition("#")
            try:
                signal = read_signal(path, key=key or None, column=key or None)
            except DataError as error:
                raise DataError(f"{error} (for predict, name it in the input: PATH#NAME)") from None
            if len(signal) < WINDOW_SAMPLES:
                raise DataError(f"{path}: {len(signal)} samples; predicting needs the last {WINDOW_SAMPLES}")
            window = signal[-WINDOW_SAMPLES:].astype(np.float32)[None]
            output = loaded.serve(tf.constant(window))["next_samples"].numpy()[0]
            results.append({"input": item, "next_samples": [float(v) for v in output]})
        return results

    def bench(self, data_dir: Path | None, workdir: Path) -> dict[str, Any]:
        from tasks.acceleration import bench

        return bench.run(self, data_dir, workdir)


TASK = AccelerationTask
