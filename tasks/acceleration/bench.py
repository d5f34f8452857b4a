"""Benchmark: training throughput through the suite vs a plain ``model.fit``, and tf.data alone.

    python run.py acceleration bench [--preset tiny|default] [--data-dir FILE]

All figures come from one process on one machine; they are reported as ratios so they can be
compared across machines. Epoch 1 of each fit includes tracing/compilation and is excluded.
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

EPOCHS = 4  # the first is warm-up; steps/s is measured over the other three


def _steps_per_second(seconds: list[float], steps: int) -> float:
    return steps / float(np.mean(seconds[1:]))


def run(task, data_dir: Path | None, workdir: Path) -> dict[str, Any]:
    config = dataclasses.replace(task.config, epochs=EPOCHS, early_stopping_patience=0)
    task.config = config
    data = task.load_data(data_dir, workdir)
    # The bench measures speed, not accuracy: a preprocessor fitted here is used and not saved.
    preprocessor = task.Preprocessor.fit(task, data, workdir)
    train_dataset, _ = task.datasets(data, preprocessor)
    train_inputs, train_targets = pipeline.windows(data.part("train"), config.stride)
    steps = int(np.ceil(len(train_inputs) / config.batch_size))

    # 1. tf.data alone: batches/s of the training pipeline (slicing windows from the signal).
    seconds = []
    for _ in range(EPOCHS):
        start = time.perf_counter()
        for _batch in train_dataset:
            pass
        seconds.append(time.perf_counter() - start)
    data_batches_per_second = _steps_per_second(seconds, steps)

    # 2. The suite: common.training.fit with every callback (checkpoints, backup, CSV, TensorBoard).
    keras.utils.set_random_seed(config.seed)
    model = task.build_model(data, preprocessor)
    timer = training.EpochTimer()
    with tempfile.TemporaryDirectory(dir=workdir) as scratch:
        train, validation = task.datasets(data, preprocessor)
        training.fit(model, train, validation, config, Path(scratch), extra_callbacks=[timer])
    suite_steps_per_second = _steps_per_second(timer.seconds, steps)

    # 3. Plain Keras: the same model on the same examples as in-memory arrays, no callbacks, no validation.
    keras.utils.set_random_seed(config.seed)
    plain = task.build_model(data, preprocessor)
    timer = training.EpochTimer()
    plain.fit(
        train_inputs.reshape(-1, WINDOW_STEPS, STEP_SAMPLES), train_targets, batch_size=config.batch_size,
        epochs=EPOCHS, shuffle=True, callbacks=[timer], verbose=0,  # a timing run: no bar cost
    )
    plain_steps_per_second = _steps_per_second(timer.seconds, steps)

    figures = {
        "train_steps_per_epoch": steps,
        "suite_fit_steps_per_second": suite_steps_per_second,
        "plain_fit_steps_per_second": plain_steps_per_second,
        "suite_vs_plain_fit_ratio": suite_steps_per_second / plain_steps_per_second,
        "tf_data_batches_per_second": data_batches_per_second,
        "tf_data_vs_model_steps_ratio": data_batches_per_second / suite_steps_per_second,
    }
    notes = (
        "suite fit includes validation each epoch and all callbacks; plain fit trains only. "
        "tf_data_vs_model_steps_ratio >> 1 means the input pipeline is not the bottleneck."
    )
    return {"figures": figures, "notes": notes, "data": data.info}
