"""TensorBoard text during training: how the model translates a few validation sentences, epoch by epoch.

The loss curve says the model fits; only its sentences say whether it translates. Each epoch
``TranslationExamples`` greedy-decodes a fixed handful of validation sources and writes one markdown
table (source, reference, greedy output) to WORKDIR/logs/tensorboard/examples, beside the Keras
TensorBoard scalars (``config.tensorboard``). Open it with ``tensorboard --logdir WORKDIR/logs/tensorboard``,
tab "Text".
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import keras
import tensorflow as tf

from data import pairs as pair_reader
from tasks.translation.model import Translator

TAG = "validation_translations"  # the TensorBoard text tag
SUBFOLDER = "examples"  # under WORKDIR/logs/tensorboard, beside Keras' train/ and validation/


class TranslationExamples(keras.callbacks.Callback):
    """After each epoch, a TensorBoard text summary of the greedy translations of ``sources``.

    references[k]: all target sentences of source k; preprocessor: the fitted task preprocessor (its
    ``encode`` and ``decode`` are the serving graph's); max_length: decoding limit (words + END).
    """

    def __init__(self, log_dir: Path, sources: Sequence[str], references: Sequence[Sequence[str]], preprocessor,
                 max_length: int):
        super().__init__()
        if len(sources) != len(references):
            raise ValueError(f"TranslationExamples needs one reference list per source, got {len(sources)} sources "
                             f"and {len(references)} reference lists")
        self.log_dir = Path(log_dir)
        self.sources = [str(source) for source in sources]
        self.references = [list(targets) for targets in references]
        self.preprocessor = preprocessor
        self.max_length = int(max_length)
        self._writer = None
        self._translate = None

    def on_train_begin(self, logs=None):
        self._writer = tf.summary.create_file_writer(str(self.log_dir))
        translator = Translator(self.model)
        # Traced once; the layers read the model's variables, so every epoch decodes with its current weights.
        self._translate = tf.function(lambda sentences: self.preprocessor.decode(
            translator.greedy(self.preprocessor.encode(sentences), self.max_length)[0]))

    def on_epoch_end(self, epoch, logs=None):
        outputs = [t.decode("utf-8") for t in self._translate(tf.constant(self.sources)).numpy()]
        table = markdown_table(self.sources, self.references, outputs, epoch + 1)
        with self._writer.as_default():
            # step = Keras' epoch index (0-based), the step its TensorBoard callback gives the epoch scalars.
            tf.summary.text(TAG, table, step=epoch)
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def markdown_table(sources: Sequence[str], references: Sequence[Sequence[str]], outputs: Sequence[str],
                   epoch: int) -> str:
    """The text TensorBoard renders: one row per sentence; '|' inside a sentence is escaped (it splits cells)."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ").strip() or "(empty)"

    rows = [f"Epoch {epoch}: greedy translations of validation sentences.", "",
            "| source | reference | greedy |", "|---|---|---|"]
    rows += [f"| {cell(source)} | {' / '.join(cell(r) for r in refs)} | {cell(output)} |"
             for source, refs, output in zip(sources, references, outputs)]
    return "\n".join(rows)


def translation_examples(config, validation: Sequence[pair_reader.Pair], preprocessor,
                         workdir: Path) -> list[keras.callbacks.Callback]:
    """The callbacks ``TranslationTask.fit`` adds: ``TranslationExamples`` on the first
    ``config.logged_examples`` distinct validation sources when ``config.tensorboard`` is on, else none."""
    sources, references = pair_reader.group_references(list(validation))
    count = min(config.logged_examples, len(sources))
    if not config.tensorboard or count == 0:
        return []
    return [TranslationExamples(Path(workdir) / "logs" / "tensorboard" / SUBFOLDER, sources[:count],
                                references[:count], preprocessor, config.max_target_tokens + 1)]
