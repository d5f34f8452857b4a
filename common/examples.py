"""TensorBoard text during training: what a generating model says about a few validation inputs.

The loss curve says a model fits; only its sentences say whether it translates or describes. Each
epoch ``TextExamples`` asks the task's decoder for one row per chosen validation input and writes a
markdown table to WORKDIR/logs/tensorboard/examples, beside Keras' TensorBoard scalars. Open it with
``tensorboard --logdir WORKDIR/logs/tensorboard``, tab "Text".
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import keras
import tensorflow as tf

SUBFOLDER = "examples"  # under WORKDIR/logs/tensorboard, beside Keras' train/ and validation/

# Given the model being trained, returns a function that decodes the chosen inputs with the model's
# current weights and gives one row of cells per input (built once per training, called every epoch).
RowsFactory = Callable[[keras.Model], Callable[[], Sequence[Sequence[str]]]]


class TextExamples(keras.callbacks.Callback):
    """After each epoch, a TensorBoard text summary ``tag``: a table with ``headers`` and the rows
    that ``rows_factory(model)()`` returns; ``title`` heads the table ("Epoch N: {title}")."""

    def __init__(self, log_dir: Path, tag: str, title: str, headers: Sequence[str], rows_factory: RowsFactory):
        super().__init__()
        self.log_dir, self.tag, self.title = Path(log_dir), tag, title
        self.headers = list(headers)
        self.rows_factory = rows_factory
        self._writer = None
        self._rows = None

    def on_train_begin(self, logs=None):
        self._writer = tf.summary.create_file_writer(str(self.log_dir))
        self._rows = self.rows_factory(self.model)

    def on_epoch_end(self, epoch, logs=None):
        table = markdown_table(self.headers, self._rows(), f"Epoch {epoch + 1}: {self.title}")
        with self._writer.as_default():
            # step = Keras' epoch index (0-based), the step its TensorBoard callback gives the epoch scalars.
            tf.summary.text(self.tag, table, step=epoch)
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]], title: str) -> str:
    """The text TensorBoard renders; '|' inside a cell is escaped (it would split the cell)."""

    def cell(text: str) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ").strip() or "(empty)"

    lines = [title, "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def log_dir(workdir: Path) -> Path:
    return Path(workdir) / "logs" / "tensorboard" / SUBFOLDER
