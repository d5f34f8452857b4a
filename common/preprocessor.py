"""The fitted state of a task, saved beside its checkpoint so that nothing is ever refitted.

Whatever a task fits on the training split (vocabularies, vectorizers, normalisation statistics,
answer tables, a pretrained-on-data image encoder, fitted baselines) lives in one ``Preprocessor``.
The train step fits it and saves it to ``WORKDIR/checkpoints/preprocessor/``; evaluate, export,
predict, bench and a resumed run load it. Its ``encode`` is the one function from raw input to
model input, used by the tf.data pipeline and inside the exported serving graph alike.

A subclass implements:
  * ``fit(task, data, workdir)`` (classmethod): fit on ``data.train`` only;
  * ``get_state()`` → JSON-able dict, and ``from_state(state, folder)`` (classmethod) → instance;
  * ``save_files(folder)``: optional, for weights and arrays too big for JSON (read back in
    ``from_state`` from the same folder);
  * ``layers()``: the Keras layers/models the serving graph uses (tracked by the export);
  * ``encode(...)``: raw tensors → model inputs (TensorFlow ops).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from common.errors import TaskError
from common.io import atomic_directory

STATE_FILE = "preprocessor.json"
FORMAT_VERSION = 1


def preprocessor_dir(workdir: Path) -> Path:
    return Path(workdir) / "checkpoints" / "preprocessor"


class Preprocessor:
    """Base class: saving and loading; the fitting and encoding are the task's."""

    task: ClassVar[str]  # the task's name, recorded in the saved state and checked on load

    @classmethod
    def fit(cls, task, data, workdir: Path) -> "Preprocessor":
        raise NotImplementedError

    def get_state(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_state(cls, state: dict[str, Any], folder: Path) -> "Preprocessor":
        raise NotImplementedError

    def save_files(self, folder: Path) -> None:
        """Writes the non-JSON parts (weights, arrays) into ``folder``; nothing by default."""

    def layers(self) -> list[Any]:
        """Keras objects whose variables the serving graph uses; none by default."""
        return []

    def export_facts(self) -> dict[str, Any]:
        """JSON-able facts written into the export's task.json for ``predict`` (e.g. the training
        signal's scale, to warn about inputs far from it); none by default."""
        return {}

    # --- saving ---------------------------------------------------------------------------------
    def save(self, folder: Path, facts: dict[str, Any] | None = None) -> None:
        """Writes the whole folder atomically: a reader sees the old preprocessor or the new one."""

        def write(temporary: Path) -> None:
            self.save_files(temporary)
            record = {"task": self.task, "format_version": FORMAT_VERSION, "facts": facts or {},
                      "state": self.get_state()}
            (temporary / STATE_FILE).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")

        atomic_directory(folder, write)

    @classmethod
    def load(cls, folder: Path) -> "Preprocessor":
        folder = Path(folder)
        state_file = folder / STATE_FILE
        if not state_file.is_file():
            raise TaskError(
                f"No fitted preprocessor at {str(folder)!r} (expected {STATE_FILE}); run the 'train' step in this "
                "--workdir first"
            )
        try:
            record = json.loads(state_file.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            raise TaskError(f"{str(state_file)!r} is not a valid preprocessor record: {error}") from None
        if record.get("task") != cls.task:
            raise TaskError(
                f"{str(state_file)!r} was fitted by task {record.get('task')!r}, not {cls.task!r}; "
                "use that task or another --workdir"
            )
        if record.get("format_version") != FORMAT_VERSION:
            raise TaskError(f"{str(state_file)!r} has format version {record.get('format_version')!r}; this code "
                            f"reads version {FORMAT_VERSION}: retrain in a new --workdir")
        return cls.from_state(record["state"], folder)

    @staticmethod
    def saved_facts(folder: Path) -> dict[str, Any]:
        """The facts recorded when the preprocessor was saved (config fingerprint, data source)."""
        try:
            return json.loads((Path(folder) / STATE_FILE).read_text(encoding="utf-8")).get("facts", {})
        except (OSError, ValueError):
            return {}
