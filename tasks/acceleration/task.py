"""Acceleration-signal prediction with the lecture's 2-layer LSTM.

    python run.py acceleration                    # default preset, synthetic 12 kHz bearing signal
    python run.py acceleration --data-dir cwru/1797_IR_7_DE12.npz --set signal_key=DE  # a CWRU recording
    python run.py acceleration --data-dir cwru --set signal_key=DE   # every file of a folder, pooled
    python run.py acceleration predict --model runs/acceleration/export runs/acceleration/samples/signal.npy
    python run.py acceleration bench              # suite fit vs plain model.fit, tf.data throughput

Task: from 25 steps x 100 samples (2,500 samples) predict the next 100 samples. The signal is
split by time into train / validation / test; metrics are corpus-level, in the signal's units, on
non-overlapping test targets, for the LSTM and four baselines on the same windows: persistence
(repeat the last 100 samples), the training mean, and ridge linear autoregressions on the last
``ridge_order`` samples and on the whole 2,500-sample window. The primary metric is the model's
test MSE divided by persistence's (each baseline gets the same ratio). Measured numbers: tasks/acceleration/README.md.

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
    predict_usage = "SIGNAL_FILE[#NAME] ...  (the last 2,500 samples of each file are the window)"
    extra_packages = ("pandas", "scipy", "matplotlib")

    def __init__(self, config: Config):
        super().__init__(config)
        # What run.py names when no epoch beats the warm start: known from the config alone, so that
        # `--steps evaluate,export` (no build_model) names the same ridge as the run that trained.
        self.warm_start = evaluation.warm_start_description(config)
        self.workdir: Path | None = None  # load_data's WORKDIR: its best checkpoint is the model evaluated/exported

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
        self.workdir = Path(workdir)
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
            logger.info("linear path warm-started at the ridge AR on the whole %s-sample window "
                        "(warm_start_ridge_alpha_median %g)", f"{WINDOW_SAMPLES:,}", ridge.alpha)
        return model

    def fit(self, model, data: AccelerationData, preprocessor: pipeline.Preprocessor, workdir: Path) -> dict[str, Any]:
        # The warm-started model (the ridge predictor) competes as "epoch 0": the LSTM's
        # contribution is kept only if some epoch beats the linear model on validation.
        train, validation = self.datasets(data, preprocessor)
        return training.fit(model, train, validation, self.config, workdir, initial_candidate=self.config.linear_skip,
                            metric_units={"loss": "MSE + L2 penalty, signal units²", "rmse": "signal units"})

    # --- evaluation -----------------------------------------------------------------------------
    def evaluate(self, model, data: AccelerationData, preprocessor: pipeline.Preprocessor, workdir: Path) -> dict:
        config = self.config
        trained = evaluation.saved_model_description(self.config, workdir)
        logger.info("evaluating the saved model: %s", trained["model_name"])
        per_file = [pipeline.windows(recording.test) for recording in data.recordings]
        inputs = np.concatenate([pair[0] for pair in per_file])
        targets = np.concatenate([pair[1] for pair in per_file])
        predictions = {"lstm": model.predict(pipeline.encode(inputs), batch_size=256, verbose=0),  # one quick pass
                       **evaluation.baseline_predictions(inputs, preprocessor, config.ridge_order)}
        # Two ridges, two names: the ridge_ar baseline (order ridge_order) and the warm start's window ridge.
        extras: dict[str, Any] = {"model_name": trained["model_name"],
                                  "model_is_warm_start": trained["model_is_warm_start"],
                                  "ridge_ar_alpha_median": preprocessor.ridge(config.ridge_order).alpha}
        if config.linear_skip:
            extras["warm_start_ridge_alpha_median"] = preprocessor.warm_start_ridge().alpha
        if len(data.recordings) > 1:
            # Each file's block from the same predictions (rows of the pooled arrays, in file order).
            ends = np.cumsum([len(pair[1]) for pair in per_file])
            extras["per_file"] = {
                recording.name: evaluation.score(self.primary_metric, {k: v[end - len(pair[1]) : end]
                                                                       for k, v in predictions.items()}, pair[1])
                for recording, pair, end in zip(data.recordings, per_file, ends)}
        rolling = evaluation.rolling_scores(model, data.recordings[0].test[0], config.recursive_windows)
        if rolling is not None:
            extras["recursive"] = rolling["metrics"]
        for index in range(min(3, len(inputs))):
            logger.info(
                "test window %d: true next samples %s | %s %s | persistence %s",
                index, np.round(targets[index, :4], 4), trained["label"], np.round(predictions["lstm"][index, :4], 4),
                np.round(predictions["persistence"][index, :4], 4),
            )
        plots.plot_predictions(Path(workdir) / "prediction.png", targets, predictions, rolling,
                               config.recursive_windows, model_label=trained["label"],
                               model_name=trained["model_name"])
        return evaluation.score(self.primary_metric, predictions, targets, **extras)

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

    def export_facts(self) -> dict[str, Any]:
        """Written into the export's task.json (with the preprocessor's facts): which model it is, so that
        predict names it as recorded at export time (the export of load_data's WORKDIR's best checkpoint)."""
        trained = evaluation.saved_model_description(self.config, self.workdir)
        return {"model": trained["model_name"], "best_epoch": trained["best_epoch"],
                "model_is_warm_start": trained["model_is_warm_start"]}

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
        model = self.exported_facts.get("model")  # absent from exports written before it was recorded
        results = [{"input": item, **({"model": model} if model else {}), "next_samples": [float(v) for v in row]}
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
