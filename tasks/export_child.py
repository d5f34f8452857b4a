"""The export step of a run trained under another Keras backend than TensorFlow, in a child process with
KERAS_BACKEND=tensorflow (common.distribution.export_in_child starts it): the SavedModel graph (preprocessing,
decoders) is TensorFlow's, and the checkpoint and fitted preprocessor are backend-neutral files.

    python -m tasks.export_child REQUEST_JSON

It lives in tasks/ because it needs the task registry, which common/ does not import.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(request: dict) -> None:
    """The child of ``export_in_child`` (KERAS_BACKEND=tensorflow): prints the export record as its last line."""
    import tasks
    from common import export, quiet, runner, training
    from common.preprocessor import preprocessor_dir

    quiet.install()
    runner.configure_logging()
    task_class = tasks.load_task(request["task"])
    config = task_class.Config.from_preset(request["preset"], request["overrides"])
    training.setup(config)
    task = task_class(config)
    task.download = request["download"]
    workdir = Path(request["workdir"])
    data = task.load_data(None if request["data_dir"] is None else Path(request["data_dir"]), workdir)
    preprocessor = task.Preprocessor.load(preprocessor_dir(workdir))
    model = training.load_best(workdir)
    record = export.export_task(task, model, preprocessor, data, workdir / "export")
    record["samples"] = task.write_samples(data, workdir / "samples")
    print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
