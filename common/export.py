"""SavedModel export with named endpoints, a reload check in a fresh Python process, and predict.

One path for every task: ``export_task`` writes the task's endpoints (preprocess → model →
postprocess, tracked together with the fitted preprocessor's layers) and a ``task.json`` manifest
naming the task, then reloads the folder in a fresh process and calls every endpoint. ``predict``
checks the folder and its manifest, then calls the task's endpoint on the task's parsed inputs.

The exported folder must serve users who have TensorFlow but not this project, so the check runs
``python -I`` (isolated: no PYTHONPATH, no script folder on sys.path) from a temporary folder,
loads the SavedModel with ``tf.saved_model.load`` and calls every endpoint on example inputs. A
preprocessor whose ops live in another package (tensorflow-text's SentencePiece) names it in
``serving_imports``: the manifest records it as ``imports``, and the check and ``predict`` import it
before loading (the import registers the ops); none by default.
"""

from __future__ import annotations

import hashlib
import importlib
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

from common.errors import TaskError
from common.io import atomic_directory

MANIFEST = "task.json"  # written into every export folder: which task, which endpoints


def write_archive(
    path: Path,
    track: Sequence[Any],
    endpoints: Mapping[str, tuple[Callable, Sequence[tf.TensorSpec]]],
    manifest: Mapping[str, Any] | None = None,
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

    def write(temporary: Path) -> None:
        archive.write_out(str(temporary), verbose=False)
        if manifest is not None:
            (temporary / MANIFEST).write_text(json.dumps(dict(manifest), indent=1) + "\n", encoding="utf-8")

    atomic_directory(path, write)


_CHECK_SCRIPT = r"""
import importlib, pickle, sys, json
import numpy as np
import tensorflow as tf
for name in json.loads(sys.argv[4]):  # packages whose ops the graph uses (serving_imports)
    importlib.import_module(name)
assert "common" not in sys.modules and "tasks" not in sys.modules
model = tf.saved_model.load(sys.argv[1])
with open(sys.argv[2], "rb") as handle:
    examples = pickle.load(handle)
report = {}
for name, arguments in examples.items():
    outputs = getattr(model, name)(*[tf.constant(a) for a in arguments])
    flat = tf.nest.flatten(outputs)
    report[name] = [list(t.shape) for t in flat]
    for index, t in enumerate(flat):
        if t.dtype.is_floating and not bool(tf.reduce_all(tf.math.is_finite(t))):
            sys.exit(f"endpoint {name!r}: output {index} holds NaN or infinite values on the smoke inputs")
    with open(sys.argv[3] + "." + name + ".pkl", "wb") as handle:
        pickle.dump(tf.nest.map_structure(lambda t: t.numpy(), outputs), handle)
print(json.dumps(report))
"""


def check_in_fresh_process(path: Path, examples: Mapping[str, Sequence[Any]], timeout: float = 300,
                           imports: Sequence[str] = ()) -> dict:
    """Loads ``path`` in a new isolated interpreter and calls each endpoint on its examples.
    imports: modules imported there before loading (packages that register the graph's ops).

    Returns ``{endpoint: {"shapes": [...], "outputs": numpy structure}}``. Raises RuntimeError with
    the child's stderr tail if anything fails there.
    """
    with tempfile.TemporaryDirectory() as temporary:
        temporary = Path(temporary)
        examples_file = temporary / "examples.pkl"
        with open(examples_file, "wb") as handle:
            pickle.dump({k: [np.asarray(a) for a in v] for k, v in examples.items()}, handle)
        result = subprocess.run(
            [sys.executable, "-I", "-c", _CHECK_SCRIPT, str(Path(path).resolve()), str(examples_file),
             str(temporary / "out"), json.dumps(list(imports))],
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
                outputs = pickle.load(handle)
            report[name] = {"shapes": shapes[name], "outputs": outputs, "sha256": _digest(outputs)}
        return report


def _digest(outputs: Any) -> str:
    """SHA-256 of an endpoint's outputs: equal digests = bit-identical outputs (the same model)."""
    digest = hashlib.sha256()
    for value in tf.nest.flatten(outputs):
        array = np.asarray(value)
        digest.update(str(array.dtype).encode() + str(array.shape).encode())
        digest.update(repr(array.tolist()).encode() if array.dtype == object else array.tobytes())
    return digest.hexdigest()


def export_task(task, model, preprocessor, data, path: Path) -> dict[str, Any]:
    """Writes ``task``'s SavedModel at ``path`` and checks it in a fresh process; returns the
    results.json record (path, endpoints with their output shapes and digests)."""
    endpoints = task.endpoints(model, preprocessor)
    # facts: what predict reads back as task.exported_facts: the preprocessor's and the task's own (e.g. which
    # model was exported).
    task_facts = task.export_facts()
    imports = list(getattr(preprocessor, "serving_imports", ()))  # e.g. tensorflow_text: needed to load
    manifest = {"task": task.name, "endpoints": sorted(endpoints), "predict_endpoint": task.predict_endpoint,
                "facts": {**preprocessor.export_facts(), **task_facts}}
    write_archive(path, track=[model, *preprocessor.layers()], endpoints=endpoints,
                  manifest={**manifest, "imports": imports} if imports else manifest)
    check = check_in_fresh_process(path, task.export_examples(data), imports=imports)
    return {"path": str(path),
            "endpoints": {name: {"shapes": c["shapes"], "sha256": c["sha256"]} for name, c in check.items()}}


def check_export_folder(task, model_dir: Path) -> dict[str, Any]:
    """Checks that ``model_dir`` is an intact export of ``task`` (its manifest, then its files), before
    TensorFlow loads anything; returns the manifest. Every problem is a TaskError naming the folder or file."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir() or not (model_dir / "saved_model.pb").is_file():
        raise TaskError(f"--model {str(model_dir)!r} is not an exported model: expected the folder written by the "
                        f"export step (WORKDIR/export, holding saved_model.pb)")
    manifest_path = model_dir / MANIFEST
    if not manifest_path.is_file():
        raise TaskError(f"--model {str(model_dir)!r} holds a SavedModel but no {MANIFEST}: it was not written by "
                        f"this suite's export step; expected the export folder of a run "
                        f"(run.py {task.name} --workdir WORKDIR writes WORKDIR/export with {MANIFEST})")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise TaskError(f"{manifest_path}: damaged export, cannot read it ({error}); expected the JSON manifest "
                        f"the export step writes: {_reexport_hint(task, model_dir)}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("task"), str):
        raise TaskError(f"{manifest_path}: damaged export, holds {type(manifest).__name__} {str(manifest)[:80]!r}; "
                        f"expected a JSON object with a \"task\" name: {_reexport_hint(task, model_dir)}")
    exported_by = manifest["task"]
    if exported_by != task.name:
        raise TaskError(f"--model {str(model_dir)!r} was exported by the {exported_by!r} task, not {task.name!r}; "
                        f"use: run.py {exported_by} predict --model {model_dir} ...")
    _check_saved_model_files(task, model_dir)
    return manifest


# The last 8 bytes of a variables.index file (a LevelDB-format table): kTableMagicNumber, little-endian, after a
# 48-byte footer. An empty or truncated index lacks them.
_TABLE_MAGIC = (0xDB4775248B80FB57).to_bytes(8, "little")
_TABLE_FOOTER_BYTES = 48


def _reexport_hint(task, model_dir: Path) -> str:
    workdir = model_dir.parent if (model_dir.parent / "checkpoints").is_dir() else "WORKDIR"
    return f"re-run the export step: run.py {task.name} --workdir {workdir} --steps export"


def _check_saved_model_files(task, model_dir: Path) -> None:
    """The damage TensorFlow would report as a traceback (a cut or emptied saved_model.pb, a missing, empty or
    cut variables.index), named here as one line with the file and the way out."""
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    graph_file = model_dir / "saved_model.pb"
    saved_model = saved_model_pb2.SavedModel()
    try:
        saved_model.ParseFromString(graph_file.read_bytes())
        problem = None if saved_model.meta_graphs else "it holds no MetaGraph (empty or cut short)"
    except (OSError, DecodeError) as error:
        problem = f"it cannot be parsed ({error}; cut short or overwritten?)"
    if problem is None:
        graph_file = model_dir / "variables" / "variables.index"
        if not graph_file.is_file():
            problem = "it is missing"
        else:
            content = graph_file.read_bytes()
            if len(content) < _TABLE_FOOTER_BYTES or content[-8:] != _TABLE_MAGIC:
                problem = f"it is {'empty' if not content else 'cut short or overwritten'} ({len(content)} bytes)"
    if problem is not None:
        raise TaskError(f"{graph_file}: the export is damaged: {problem}; {_reexport_hint(task, model_dir)}")


def open_export(task, model_dir: Path, manifest: dict[str, Any] | None = None):
    """Loads an export folder written for ``task``; every mismatch is a TaskError that says what it got.
    ``manifest``: the folder's already checked manifest (else it is checked here)."""
    if manifest is None:
        manifest = check_export_folder(task, model_dir)
    for name in manifest.get("imports", []):  # packages that register the graph's ops, e.g. tensorflow_text
        try:
            importlib.import_module(name)
        except ImportError as error:
            raise TaskError(f"--model {str(model_dir)!r} needs the Python package {name!r} to load ({error}); "
                            f"install it (pip install {name.replace('_', '-')}) with the suite's requirements"
                            ) from None
    try:
        loaded = tf.saved_model.load(str(model_dir))
    except (OSError, ValueError, IndexError, tf.errors.OpError) as error:
        # Damage the file checks cannot see (e.g. a cut variables.data-* file): TensorFlow's message, first line.
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise TaskError(f"--model {str(model_dir)!r}: the export is damaged, TensorFlow cannot load it "
                        f"({first_line[:300]}); {_reexport_hint(task, model_dir)}") from None
    if not hasattr(loaded, task.predict_endpoint):
        exported_by = manifest.get("task")
        raise TaskError(f"--model {str(model_dir)!r} has no {task.predict_endpoint!r} endpoint"
                        f"{' (exported by ' + repr(exported_by) + ')' if exported_by else ''}; "
                        f"expected a SavedModel exported by the {task.name!r} task")
    return loaded


def refuse_empty_texts(texts: Sequence[str], arguments: Sequence[str], expected: str) -> None:
    """TaskError naming the first input whose text is empty or whitespace only: a label or a translation of
    nothing is a wrong answer, not a prediction. ``arguments``: what the user typed, item by item (a file's
    path where the text was read from that file); ``expected``: what a good input is, e.g. "a review"."""
    for position, (text, argument) in enumerate(zip(texts, arguments), start=1):
        if not text.strip():
            what = f"the file {argument!r} holds no text" if argument != text else f"is empty ({text!r})"
            raise TaskError(f"input {position} of {len(texts)}{':' if argument != text else ''} {what}; "
                            f"expected {expected} (whitespace alone counts as empty)")


def predict(task, model_dir: Path, inputs: Sequence[str]) -> list[dict[str, Any]]:
    """``run.py TASK predict``: parse the inputs, call the task's endpoint, format one dict per item."""
    manifest = check_export_folder(task, model_dir)  # the wrong folder is named before the inputs are parsed
    task.exported_facts = manifest.get("facts", {})  # what the training data looked like, for warnings
    arguments = task.predict_arguments(list(inputs))  # a bad input fails before the slow load
    loaded = open_export(task, model_dir, manifest)
    outputs = getattr(loaded, task.predict_endpoint)(*[tf.convert_to_tensor(a) for a in arguments])
    outputs = tf.nest.map_structure(lambda t: t.numpy(), outputs)
    return task.predict_results(list(inputs), outputs)
