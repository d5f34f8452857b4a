"""Greedy translations of a few validation sentences in TensorBoard, epoch by epoch
(common.examples.TextExamples)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import keras
import tensorflow as tf

from common import decoding, examples
from data import pairs as pair_reader
from tasks.translation.model import Translator

TAG = "validation_translations"  # the TensorBoard text tag
SUBFOLDER = examples.SUBFOLDER


def translation_examples(config, validation: Sequence[pair_reader.Pair], preprocessor,
                         workdir: Path) -> list[keras.callbacks.Callback]:
    """The callbacks ``TranslationTask.fit`` adds: greedy translations of the first ``config.logged_examples``
    distinct validation sources (through the preprocessor's ``encode``/``decode``, the serving graph's) when
    ``config.tensorboard`` is on, else none."""
    sources, references = pair_reader.group_references(list(validation))
    count = min(config.logged_examples, len(sources))
    if not config.tensorboard or count == 0:
        return []
    sources, references = sources[:count], references[:count]
    max_length = config.max_target_tokens + 1  # words + END

    def rows_factory(model):
        translator = Translator(model)
        # Traced once; the layers read the model's variables, so every epoch decodes with its current weights.
        translate = decoding.traced(lambda sentences: preprocessor.decode(
            translator.greedy(preprocessor.encode(sentences), max_length)[0]))

        def rows():
            outputs = [t.decode("utf-8") for t in translate(tf.constant(sources)).numpy()]
            return [[s, " / ".join(refs), out] for s, refs, out in zip(sources, references, outputs)]

        return rows

    return [examples.TextExamples(examples.log_dir(workdir), TAG, "greedy translations of validation sentences.",
                                  ["source", "reference", "greedy"], rows_factory)]
