"""SavedModel export with named endpoints, and a reload check in a fresh Python process.

The exported folder must serve users who have TensorFlow but not this project, so the check runs
``python -I`` (isolated: no PYTHONPATH, no script folder on sys.path) from a temporary folder,
loads the SavedModel with ``tf.saved_model.load`` and calls every endpoint on example inputs.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf

from common.io import atomic_directory


def write_archive(
    path: Path,
    track: Sequence[Any],
    endpoints: Mapping[str, tuple[Callable, Sequence[tf.TensorSpec]]],
) -> None:
    """Writes a SavedModel at ``path`` atomically.

    track: every Keras model and layer whose variables the endpoints use (a TextVectorization must
    already be adapted/built). endpoints: name -> (python function, input signature).
    """
    archive = keras.export.ExportArchive()
    for item in track:
        archive.track(item)
    for name, (function, signature) in endpoints.items():
        archive.add_endpoint(name=name, fn=tf.function(function), input_signature=list(signature))
    atomic_directory(path, lambda temporary: archive.write_out(str(temporary), verbose=False))


_CHECK_SCRIPT = r"""
import pickle, sys, json
import numpy as np
import tensorflow as tf
assert "common" not in sys.modules and "tasks" not in sys.modules
model = tf.saved_model.load(sys.argv[1])
with open(sys.argv[2], "rb") as handle:
    examples = pickle.load(handle)
report = {}
for name, arguments in examples.items():
    outputs = getattr(model, name)(*[tf.constant(a) for a in arguments])
    flat = tf.nest.flatten(outputs)
    report[name] = [list(t.shape) for t in flat]
    with open(sys.argv[3] + "." + name + ".pkl", "wb") as handle:
        pickle.dump(tf.nest.map_structure(lambda t: t.numpy(), outputs), handle)
print(json.dumps(report))
"""


def check_in_fresh_process(path: Path, examples: Mapping[str, Sequence[Any]], timeout: float = 300) -> dict:
    """Loads ``path`` in a new isolated interpreter and calls each endpoint on its examples.

    Returns ``{endpoint: {"shapes": [...], "outputs": numpy structure}}``. Raises RuntimeError with
    the child's stderr tail if anything fails there.
    """
    with tempfile.TemporaryDirectory() as temporary:
        temporary = Path(temporary)
        examples_file = temporary / "examples.pkl"
        with open(examples_file, "wb") as handle:
            pickle.dump({k: [np.asarray(a) for a in v] for k, v in examples.items()}, handle)
        result = subprocess.run(
            [sys.executable, "-I", "-c", _CHECK_SCRIPT, str(Path(path).resolve()), str(examples_file), str(temporary / "out")],
            cwd=temporary,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise RuntimeError(f"Exported model at {path} failed in a fresh process:\n{result.stderr[-3000:]}")
        shapes = json.loads(result.stdout.strip().splitlines()[-1])
        report = {}
        for name in examples:
            with open(temporary / f"out.{name}.pkl", "rb") as handle:
                report[name] = {"shapes": shapes[name], "outputs": pickle.load(handle)}
        return report
