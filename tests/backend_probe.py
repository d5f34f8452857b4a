"""Run by tests/test_backends.py in a child process under KERAS_BACKEND=jax (the backend is fixed at import).

For one task and a finished run folder (trained under TensorFlow): load the best checkpoint, predict the first
validation batch (saved for the parent to compare with TensorFlow's), evaluate it with the task's own evaluate,
then build a fresh model and train it one epoch through the task's fit. Prints one JSON line."""

import json
import sys
import tempfile
from pathlib import Path

import keras
import numpy as np

import tasks
from common import training
from common.preprocessor import preprocessor_dir


def first_outputs(model, dataset) -> np.ndarray:
    inputs = next(iter(dataset))[0]
    outputs = model.predict(inputs, verbose=0)
    first = outputs[0] if isinstance(outputs, (list, tuple)) else outputs
    return np.asarray(first, dtype=np.float32)


def main(name: str, workdir: Path, out: Path) -> None:
    task_class = tasks.load_task(name)
    task = task_class(task_class.Config.from_preset("tiny", {"epochs": 1, "tensorboard": False}))
    training.setup(task.config)
    data = task.load_data(None, workdir)
    preprocessor = task.Preprocessor.load(preprocessor_dir(workdir))
    model = training.load_best(workdir)
    np.save(out / "predictions.npy", first_outputs(model, task.datasets(data, preprocessor)[1]))
    with tempfile.TemporaryDirectory() as folder:
        metrics = task.evaluate(model, data, preprocessor, Path(folder))
        fresh = task.build_model(data, preprocessor)
        history = task.fit(fresh, data, preprocessor, Path(folder) / "fit")["history"]
    print(json.dumps({"backend": keras.backend.backend(), "devices": training.device_report(), "metrics": metrics,
                      "history": history}, default=float))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]))
