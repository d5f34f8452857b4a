"""Acceleration-signal prediction with the lecture's 2-layer LSTM.

    python run.py acceleration                    # default preset, synthetic 12 kHz bearing signal
    python run.py acceleration --data-dir ../shared/data/cwru/1797_IR_7_DE12.npz --set signal_key=DE
    python run.py acceleration --data-dir ../shared/data/cwru --set signal_key=DE   # every file, pooled
    python run.py acceleration predict --model runs/acceleration/export runs/acceleration/samples/signal.npy
    python run.py acceleration bench              # suite fit vs plain model.fit, tf.data throughput

Task: from 25 steps x 100 samples (2,500 samples) predict the next 100 samples. The signal is
split by time into train / validation / test; metrics are corpus-level, in the signal's units, on
non-overlapping test targets, for the LSTM and four baselines on the same windows: persistence
(repeat the last 100 samples), the training mean, and ridge linear autoregressions on the last
``ridge_order`` samples and on the whole 2,500-sample window. The primary metric is the model's
test MSE divided by persistence's (each baseline gets the same ratio). Measured numbers: README.

Several recordings (``--data-dir`` a folder or ``a.npz,b.npz``): each file is split by time on its
own, training pools the windows of all files (one normalisation, one ridge), no window crosses a
file boundary, and results.json has the pooled metrics plus ``per_file`` blocks.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import tensorflow as tf
from keras import ops

from common import training
from common.io import atomic_path
from common.task import Task, TaskData
from data import DataError
from data.signal import read_signal, signal_files
from data.synthetic import vibration
from tasks.acceleration import evaluation, pipeline, plots
from tasks.acceleration import model as model_lib
from tasks.acceleration.config import HORIZON, STEP_SAMPLES, WINDOW_SAMPLES, WINDOW_STEPS, Config

logger = logging.getLogger(__name__)

# Recursive generation is scored from at most this many start points spread over the test split.
_MAX_ROLLING_STARTS = 64


@dataclasses.dataclass
class AccelerationData(TaskData):
    recordings: list[pipeline.Recording]  # each signal file cut by time into train / validation / test
    path: Path  # the --data-dir given (a file, a folder or a list), or the synthetic file written

    def part(self, split: str) -> tuple[np.ndarray, ...]:
        """Every segment of ``split`` ("train", "validation", "test") over all recordings, in file order."""
        return tuple(segment for recording in self.recordings for segment in getattr(recording, split))


class AccelerationTask(Task):
    name = "acceleration"
    description = "next-100-sample prediction of a vibration signal with a 2-layer LSTM"
    Config = Config
    Preprocessor = pipeline.Preprocessor
    primary_metric = "mse_ratio_vs_persistence"
    higher_is_better = False
    warm_start = "the ridge AR predictor on the whole 2,500-sample window (baseline ridge_ar_window)"
    predict_usage = "SIGNAL_FILE[#NAME] ...  (the last 2,500 samples of each file are the window)"
    extra_packages = ("pandas", "scipy", "matplotlib")

    # --- data -----------------------------------------------------------------------------------
    def load_data(self, data_dir: Path | None, workdir: Path) -> AccelerationData:
        config = self.config
        if data_dir is None:
            spec = vibration.VibrationSpec(sample_rate=config.synthetic_sample_rate,
                                           duration_seconds=config.synthetic_seconds, seed=config.seed)
            name = f"vibration_seed{spec.seed}_{spec.duration_seconds:g}s_{spec.sample_rate}hz.npz"
            path = Path(workdir) / "data" / name
            if not path.exists():
                vibration.write_npz(spec, path)
            key, source = "DE", "synthetic"
        else:
            path, key, source = Path(data_dir), config.signal_key, "file"
        files = signal_files(path) if source == "file" else [path]
        recordings = pipeline.read_recordings(files, config, key)
        info = {"source": source if len(files) == 1 else "files", "path": str(path)}
        for recording in recordings:
            facts = {
                "samples": int(sum(b - a for spans in recording.bounds.values() for a, b in spans)),
                # one [start, stop) per split (fraction split), or split → segments (blocked split)
                "split_bounds": ([spans[0] for spans in recording.bounds.values()] if not config.blocks
                                 else recording.bounds),
                "train_windows": pipeline.count_windows(recording.train, config.stride),
                "validation_windows": pipeline.count_windows(recording.validation, HORIZON),
                "test_windows": pipeline.count_windows(recording.test, HORIZON),
            }
            if len(files) == 1:
                info.update(facts)
            else:
                info.setdefault("files", {})[recording.name] = {"path": recording.path, **facts}
        if len(files) > 1:
            for count in ("samples", "train_windows", "validation_windows", "test_windows"):
                info[count] = sum(facts[count] for facts in info["files"].values())
        return AccelerationData(recordings=recordings, path=path, info=info)

    def datasets(self, data: AccelerationData, preprocessor: pipeline.Preprocessor):
        config = self.config
        return (pipeline.dataset(data.part("train"), config.stride, config.batch_size, shuffle=True, seed=config.seed),
                pipeline.dataset(data.part("validation"), HORIZON, config.batch_size, shuffle=False, seed=config.seed))

    # --- model ----------------------------------------------------------------------------------
    def build_model(self, data: AccelerationData, preprocessor: pipeline.Preprocessor):
        model = model_lib.build_model(self.config, mean=preprocessor.mean, std=preprocessor.std)
        if self.config.linear_skip:
            ridge = preprocessor.warm_start_ridge()
            model_lib.warm_start_linear_path(model, ridge)
            if preprocessor.dense is not None:  # what run.py says the model is when no epoch beats it
                self.warm_start = (f"the ridge AR predictor on the whole 2,500-sample window refitted on "
                                   f"training windows {preprocessor.dense_stride} samples apart "
                                   "(baseline ridge_ar_window_dense)")
            logger.info("linear path warm-started at the ridge solution (median alpha %g)", ridge.alpha)
        return model

    def fit(self, model, data: AccelerationData, preprocessor: pipeline.Preprocessor, workdir: Path) -> dict[str, Any]:
        # The warm-started model (the ridge predictor) competes as "epoch 0": the LSTM's
        # contribution is kept only if some epoch beats the linear model on validation.
        train, validation = self.datasets(data, preprocessor)
        return training.fit(model, train, validation, self.config, workdir, initial_candidate=self.config.linear_skip)

    # --- evaluation -----------------------------------------------------------------------------
    def evaluate(self, model, data: AccelerationData, preprocessor: pipeline.Preprocessor, workdir: Path) -> dict:
        config = self.config
        per_file = [pipeline.windows(recording.test) for recording in data.recordings]
        inputs = np.concatenate([pair[0] for pair in per_file])
        targets = np.concatenate([pair[1] for pair in per_file])
        predictions = {"lstm": model.predict(pipeline.encode(inputs), batch_size=256, verbose=0),  # one quick pass
                       **evaluation.baseline_predictions(inputs, preprocessor, config.ridge_order)}
        extras: dict[str, Any] = {"ridge_alpha_median": preprocessor.ridge(config.ridge_order).alpha}
        if len(data.recordings) > 1:
            # Each file's block from the same predictions (rows of the pooled arrays, in file order).
            ends = np.cumsum([len(pair[1]) for pair in per_file])
            extras["per_file"] = {
                recording.name: evaluation.score(self.primary_metric, {k: v[end - len(pair[1]) : end]
                                                                       for k, v in predictions.items()}, pair[1])
                for recording, pair, end in zip(data.recordings, per_file, ends)}
        rolling = self._rolling_evaluation(model, data.recordings[0].test[0])
        if rolling is not None:
            extras["recursive"] = rolling["metrics"]
        for index in range(min(3, len(inputs))):
            logger.info(
                "test window %d: true next samples %s | LSTM %s | persistence %s",
                index, np.round(targets[index, :4], 4), np.round(predictions["lstm"][index, :4], 4),
                np.round(predictions["persistence"][index, :4], 4),
            )
        plots.plot_predictions(Path(workdir) / "prediction.png", targets, predictions, rolling,
                               config.recursive_windows)
        return evaluation.score(self.primary_metric, predictions, targets, **extras)

    def _rolling_evaluation(self, model, test: np.ndarray) -> dict | None:
        steps = self.config.recursive_windows
        span = WINDOW_SAMPLES + steps * HORIZON
        if steps < 1 or len(test) < span:
            logger.warning("test split too short for %d recursive windows; skipping the rolling test", steps)
            return None
        count = min(_MAX_ROLLING_STARTS, len(test) - span + 1)
        starts = np.unique(np.linspace(0, len(test) - span, num=count).astype(int))
        windows = np.stack([test[s : s + WINDOW_SAMPLES] for s in starts])
        truth = np.stack([test[s + WINDOW_SAMPLES : s + span] for s in starts]).reshape(len(starts), steps, HORIZON)
        # keras.ops, not pipeline.encode (TF): under JAX the forecast loop is traced (the windows are checked above)
        generated = np.asarray(model_lib.rolling_forecast(
            lambda w: model(ops.reshape(w, (-1, WINDOW_STEPS, STEP_SAMPLES)), training=False), windows, steps))
        repeated = np.repeat(windows[:, None, -HORIZON:], steps, axis=1)  # persistence, rolled the same way
        per_step = [float(np.mean((generated[:, k] - truth[:, k]) ** 2)) for k in range(steps)]
        per_step_persistence = [float(np.mean((repeated[:, k] - truth[:, k]) ** 2)) for k in range(steps)]
        return {
            "metrics": {"windows": steps, "starts": int(len(starts)), "lstm_mse_by_window": per_step,
                        "persistence_mse_by_window": per_step_persistence, "lstm_mse": float(np.mean(per_step))},
            "generated": generated[0].reshape(-1),
            "truth": truth[0].reshape(-1),
            "context": windows[0],
        }

    # --- export and predict ---------------------------------------------------------------------
    def endpoints(self, model, preprocessor: pipeline.Preprocessor):
        def predict(windows):
            return model(preprocessor.encode(windows), training=False)

        def serve(windows):
            return {"next_samples": predict(windows)}

        def generate(windows, steps):
            flat = tf.reshape(preprocessor.encode(windows), (-1, WINDOW_SAMPLES))
            generated = model_lib.rolling_forecast(predict, flat, steps)
            return {"samples": tf.reshape(generated, (tf.shape(generated)[0], -1))}

        windows, steps = tf.TensorSpec(None, tf.float32, name="windows"), tf.TensorSpec([], tf.int32, name="steps")
        return {"serve": (serve, [windows]), "generate": (generate, [windows, steps])}

    def export_examples(self, data: AccelerationData) -> dict[str, Sequence[Any]]:
        example = pipeline.windows(data.recordings[0].test)[0][:2].astype(np.float32)
        return {"serve": [example], "generate": [example.reshape(-1, WINDOW_STEPS, STEP_SAMPLES), np.int32(3)]}

    def write_samples(self, data: AccelerationData, folder: Path) -> list[str]:
        # The first 2,500 test samples: predict reads the last 2,500 samples of the file.
        path = Path(folder) / "signal.npy"
        with atomic_path(path, suffix=".npy") as temporary:
            np.save(temporary, data.recordings[0].test[0][:WINDOW_SAMPLES])
        return [str(path)]

    def predict_arguments(self, inputs: Sequence[str]) -> list[Any]:
        """Each input is a signal file, optionally ``path#KEY`` (npz/mat key or csv/DataFrame column)."""
        windows = []
        for item in inputs:
            path, _, key = item.partition("#")
            try:
                signal = read_signal(path, key=key or None, column=key or None)
            except DataError as error:
                raise DataError(f"{error} (for predict, name it in the input: PATH#NAME)") from None
            if len(signal) < WINDOW_SAMPLES:
                raise DataError(f"{path}: {len(signal)} samples; predicting needs the last {WINDOW_SAMPLES}")
            windows.append(signal[-WINDOW_SAMPLES:].astype(np.float32))
        self._input_scales = [float(np.std(w)) for w in windows]  # for predict_results' scale warning
        return [np.stack(windows)]

    def predict_results(self, inputs: Sequence[str], outputs) -> list[dict[str, Any]]:
        results = [{"input": item, "next_samples": [float(v) for v in row]}
                   for item, row in zip(inputs, outputs["next_samples"])]
        train_std = self.exported_facts.get("train_std")
        for result, scale in zip(results, getattr(self, "_input_scales", []) if train_std else ()):
            ratio = scale / train_std
            if not 0.2 <= ratio <= 5:  # a model knows only the scale it was trained on
                result["warning"] = (f"the input's standard deviation is {ratio:.3g}x the training signal's "
                                     f"({train_std:.3g}): predictions far outside the training scale are unreliable")
                logger.warning("%s: %s", result["input"], result["warning"])
        return results

    def bench(self, data_dir: Path | None, workdir: Path) -> dict[str, Any]:
        from tasks.acceleration import bench  # noqa: PLC0415  (only the bench needs it)
        return bench.run(self, data_dir, workdir)


TASK = AccelerationTask
