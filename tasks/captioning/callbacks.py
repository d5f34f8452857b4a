"""Captions of a few validation images in TensorBoard, epoch by epoch (common.examples.TextExamples)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from common import decoding, examples
from tasks.captioning import model as captioning_model
from tasks.captioning import pipeline

TAG = "validation_captions"  # the TensorBoard text tag
SUBFOLDER = examples.SUBFOLDER


def caption_examples(config, records: Sequence[pipeline.CaptionedImage], features: np.ndarray,
                     words: Sequence[str], workdir: Path) -> list[keras.callbacks.Callback]:
    """The callbacks ``CaptioningTask.fit`` adds: captions (at the evaluation's beam width) of the first
    ``config.logged_examples`` validation images when ``config.tensorboard`` is on, else none.

    features: float32 [N, D], the records' encoder features; words: the vocabulary (id → word).
    """
    count = min(config.logged_examples, len(records))
    if not config.tensorboard or count == 0:
        return []
    chosen = list(records[:count])
    shown = np.asarray(features[:count], np.float32)
    vocabulary = tf.constant(list(words))

    def rows_factory(model):
        generator = captioning_model.CaptionGenerator(model, config.max_caption_length)
        # Traced once; the layers read the model's variables, so every epoch decodes with its current weights.
        tokens = decoding.traced(lambda f: generator.generate(f, config.beam_width, config.length_penalty)[0],
                                 [([None, shown.shape[1]], "float32")])

        def generate(features):
            return pipeline.tokens_to_strings(tf.convert_to_tensor(ops.convert_to_numpy(tokens(features))), vocabulary)

        def rows():
            captions = [text.decode("utf-8") for text in generate(shown).numpy()]
            return [[Path(r.path).name, caption, " / ".join(r.captions)] for r, caption in zip(chosen, captions)]

        return rows

    search = "greedy" if config.beam_width <= 1 else f"beam {config.beam_width}"
    return [examples.TextExamples(examples.log_dir(workdir), TAG,
                                  f"captions generated for validation images ({search}).",
                                  ["image", "generated", "references"], rows_factory)]
