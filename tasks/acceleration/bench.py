"""Benchmark: training throughput through the suite vs a plain ``model.fit``, and tf.data alone.

    python run.py acceleration bench [--preset tiny|default] [--data-dir FILE]

Three fits of the same model from the same seed, one process, one machine, reported as ratios so they compare
across machines:
  * suite: ``common.training.fit`` with every callback (backup, best checkpoint, CSV, TensorBoard, LR schedule,
    the non-finite-loss guard and the epoch line);
  * plain: ``model.fit`` on the SAME tf.data training and validation datasets, validating each epoch, with no
    callbacks: ``suite_vs_plain_fit_ratio`` is the suite's own cost and nothing else;
  * numpy: ``model.fit`` on the training windows as in-memory arrays, no validation (Keras' NumPy adapter: a
    different input path, kept as its own figure).
The suite and plain fits alternate (suite, plain, suite, plain), so that a load that comes and goes on a shared
machine weighs on both alike. Epoch 1 of each fit includes tracing/compilation and is dropped; steps/s is over the
median of the other epochs (a slow epoch while another job ran is an outlier, not the suite's cost).
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np

from common import training
from tasks.acceleration import pipeline
from tasks.acceleration.config import STEP_SAMPLES, WINDOW_STEPS

logger = logging.getLogger(__name__)

EPOCHS = 5  # per fit; the first is warm-up (compilation)
ROUNDS = 2  # suite and plain fits alternate this many times each: 2 x 4 timed epochs per figure


def _steps_per_second(seconds: list[float], steps: int) -> float:
    return steps / float(np.median(seconds[1:]))


def _timed_epochs(timer) -> tuple[list[float], list[float]]:
    """(wall, CPU) seconds of the timed epochs (epoch 1 traces and compiles)."""
    return timer.seconds[1:], timer.cpu_seconds[1:]


def run(task, data_dir: Path | None, workdir: Path) -> dict[str, Any]:
    config = dataclasses.replace(task.config, epochs=EPOCHS, early_stopping_patience=0)
    task.config = config
    data = task.load_data(data_dir, workdir)
    # The bench measures speed, not accuracy: a preprocessor fitted here is used and not saved.
    preprocessor = task.Preprocessor.fit(task, data, workdir)
    train, validation = task.datasets(data, preprocessor)  # the suite's datasets, shared by the suite and plain fits
    train_inputs, train_targets = pipeline.windows(data.part("train"), config.stride)
    steps = int(np.ceil(len(train_inputs) / config.batch_size))

    # 1. tf.data alone: batches/s of the training pipeline (slicing windows from the signal).
    seconds = []
    for _ in range(EPOCHS):
        start = time.perf_counter()
        for _batch in train:
            pass
        seconds.append(time.perf_counter() - start)
    data_batches_per_second = _steps_per_second(seconds, steps)

    suite_seconds, plain_seconds, suite_cpu, plain_cpu = [], [], [], []
    for _ in range(ROUNDS):
        # 2. The suite: common.training.fit with every callback, validating each epoch.
        keras.utils.set_random_seed(config.seed)
        model = task.build_model(data, preprocessor)
        timer = training.EpochTimer()
        with tempfile.TemporaryDirectory(dir=workdir) as scratch:
            training.fit(model, train, validation, config, Path(scratch), extra_callbacks=[timer])
        wall, cpu = _timed_epochs(timer)
        suite_seconds, suite_cpu = suite_seconds + wall, suite_cpu + cpu

        # 3. Plain Keras on the same datasets, validating each epoch, no callbacks but the timer (and no bar).
        keras.utils.set_random_seed(config.seed)
        plain = task.build_model(data, preprocessor)
        timer = training.EpochTimer()
        plain.fit(train, validation_data=validation, epochs=EPOCHS, shuffle=False, callbacks=[timer], verbose=0)
        wall, cpu = _timed_epochs(timer)
        plain_seconds, plain_cpu = plain_seconds + wall, plain_cpu + cpu
    suite_steps_per_second = steps / float(np.median(suite_seconds))
    plain_steps_per_second = steps / float(np.median(plain_seconds))

    # 4. Plain Keras on the same training examples as in-memory arrays, no validation (the NumPy input path).
    keras.utils.set_random_seed(config.seed)
    numpy_model = task.build_model(data, preprocessor)
    timer = training.EpochTimer()
    numpy_model.fit(train_inputs.reshape(-1, WINDOW_STEPS, STEP_SAMPLES), train_targets, batch_size=config.batch_size,
                    epochs=EPOCHS, shuffle=True, callbacks=[timer], verbose=0)
    numpy_steps_per_second = _steps_per_second(timer.seconds, steps)

    figures = {
        "train_steps_per_epoch": steps,
        "timed_epochs_per_fit_kind": len(suite_seconds),
        "suite_fit_steps_per_second": suite_steps_per_second,
        "plain_fit_steps_per_second": plain_steps_per_second,
        "plain_fit_validates": True,
        "plain_fit_input": "tf.data",
        "suite_vs_plain_fit_ratio": suite_steps_per_second / plain_steps_per_second,
        # The same ratio in CPU seconds of this process per epoch: other jobs on a shared machine move it far less.
        "suite_vs_plain_fit_cpu_ratio": float(np.median(plain_cpu) / np.median(suite_cpu)),
        "numpy_fit_steps_per_second": numpy_steps_per_second,
        "numpy_fit_validates": False,
        "suite_vs_numpy_fit_ratio": suite_steps_per_second / numpy_steps_per_second,
        "tf_data_batches_per_second": data_batches_per_second,
        "tf_data_vs_model_steps_ratio": data_batches_per_second / suite_steps_per_second,
    }
    notes = (
        "steps/s = training steps per second of wall time of an epoch, validation and callbacks included (median "
        "of the timed epochs: epochs 2..N of each fit; suite and plain fits alternate). suite: common.training.fit "
        "with every callback; plain: model.fit on the same tf.data training and validation datasets with no "
        "callbacks, validating each epoch; numpy: model.fit on in-memory arrays, training only (another input "
        "path). suite_vs_plain_fit_cpu_ratio: the same in CPU seconds of this process (all threads) per epoch. "
        "tf_data_vs_model_steps_ratio >> 1: input is not the bottleneck."
    )
    epochs = {"suite_wall": suite_seconds, "plain_wall": plain_seconds, "suite_cpu": suite_cpu, "plain_cpu": plain_cpu}
    return {"figures": figures, "notes": notes, "data": data.info,
            "epoch_seconds": {key: [round(value, 3) for value in values] for key, values in epochs.items()}}
