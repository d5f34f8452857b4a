"""TensorBoard text during training: what the decoder says about a few validation images, epoch by epoch.

The loss curve says the model fits; only the captions say whether it learned to describe. Each epoch
``CaptionExamples`` decodes a fixed handful of validation images (the evaluation's beam width) and writes
one markdown table (image, generated caption, references) to WORKDIR/logs/tensorboard/examples, beside
the Keras TensorBoard scalars (``config.tensorboard``). Open it with
``tensorboard --logdir WORKDIR/logs/tensorboard``, tab "Text".
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from tasks.captioning import model as captioning_model
from tasks.captioning import pipeline

TAG = "validation_captions"  # the TensorBoard text tag
SUBFOLDER = "examples"  # under WORKDIR/logs/tensorboard, beside Keras' train/ and validation/


class CaptionExamples(keras.callbacks.Callback):
    """After each epoch, a TensorBoard text summary of captions generated for a few validation images.

    features: float32 [K, D], the images' encoder features; references[k]: image k's reference captions;
    words: the vocabulary (id → word) that turns generated ids into text.
    """

    def __init__(self, log_dir: Path, names: Sequence[str], features: np.ndarray,
                 references: Sequence[Sequence[str]], words: Sequence[str], max_words: int, beam_width: int,
                 length_penalty: float = 0.0):
        super().__init__()
        if not len(names) == len(features) == len(references):
            raise ValueError(f"CaptionExamples needs one name, feature row and reference list per image, got "
                             f"{len(names)} names, {len(features)} feature rows, {len(references)} reference lists")
        self.log_dir = Path(log_dir)
        self.names = [str(name) for name in names]
        self.features = np.asarray(features, np.float32)
        self.references = [list(captions) for captions in references]
        self.words = list(words)
        self.max_words = int(max_words)
        self.beam_width = int(beam_width)
        self.length_penalty = float(length_penalty)
        self._writer = None
        self._generate = None

    def on_train_begin(self, logs=None):
        self._writer = tf.summary.create_file_writer(str(self.log_dir))
        generator = captioning_model.CaptionGenerator(self.model, self.max_words)
        words = tf.constant(self.words)
        # Traced once; the layers read the model's variables, so every epoch decodes with its current weights.
        self._generate = tf.function(lambda features: pipeline.tokens_to_strings(
            generator.generate(features, self.beam_width, self.length_penalty)[0], words))

    def on_epoch_end(self, epoch, logs=None):
        captions = [text.decode("utf-8") for text in self._generate(tf.constant(self.features)).numpy()]
        table = markdown_table(self.names, captions, self.references, epoch + 1, self.beam_width)
        with self._writer.as_default():
            # step = Keras' epoch index (0-based), the step its TensorBoard callback gives the epoch scalars.
            tf.summary.text(TAG, table, step=epoch)
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def markdown_table(names: Sequence[str], captions: Sequence[str], references: Sequence[Sequence[str]],
                   epoch: int, beam_width: int) -> str:
    """The text TensorBoard renders: one row per image; '|' inside captions is escaped (it splits cells)."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ").strip() or "(empty)"

    decoding = "greedy" if beam_width <= 1 else f"beam {beam_width}"
    rows = [f"Epoch {epoch}: captions generated for validation images ({decoding}).", "",
            "| image | generated | references |", "|---|---|---|"]
    rows += [f"| {cell(name)} | {cell(caption)} | {' / '.join(cell(r) for r in refs)} |"
             for name, caption, refs in zip(names, captions, references)]
    return "\n".join(rows)


def caption_examples(config, records: Sequence[pipeline.CaptionedImage], features: np.ndarray,
                     words: Sequence[str], workdir: Path) -> list[keras.callbacks.Callback]:
    """The callbacks ``CaptioningTask.fit`` adds: ``CaptionExamples`` on the first ``config.logged_examples``
    validation records when ``config.tensorboard`` is on, else none."""
    count = min(config.logged_examples, len(records))
    if not config.tensorboard or count == 0:
        return []
    chosen = list(records[:count])
    return [CaptionExamples(Path(workdir) / "logs" / "tensorboard" / SUBFOLDER, [Path(r.path).name for r in chosen],
                            features[:count], [r.captions for r in chosen], words, config.max_caption_length,
                            config.beam_width, config.length_penalty)]
