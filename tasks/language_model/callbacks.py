"""Samples while training: after each epoch, greedy and sampled continuations of a few validation prompts
go to the log and (with config.tensorboard) to TensorBoard text (common.examples.TextExamples)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import keras
import tensorflow as tf

from common import examples
from tasks.language_model.model import Generator

logger = logging.getLogger(__name__)
TAG = "validation_samples"  # the TensorBoard text tag


def sampler(model: keras.Model, preprocessor, top_k: int):
    """A function (prompts [B], num_tokens, temperature, seed) → [B] continuations (tf.string): under TensorFlow
    a tf.function, the export's graph; under another Keras backend the text ↔ ids steps stay TensorFlow ops
    (eager) and the generator runs on that backend between them, on NumPy ids."""
    generator = Generator(model, top_k)

    def generate(prompts, num_tokens, temperature, seed):
        ids, lengths = preprocessor.encode_prompts(prompts)
        return preprocessor.decode(generator.generate(ids, lengths, num_tokens, temperature, seed))

    if keras.backend.backend() == "tensorflow":
        return tf.function(generate)

    def generate_elsewhere(prompts, num_tokens, temperature, seed):
        ids, lengths = preprocessor.encode_prompts(prompts)
        tokens = generator.generate(ids.numpy(), lengths.numpy(), int(num_tokens), float(temperature), int(seed))
        return preprocessor.decode(tf.constant(keras.ops.convert_to_numpy(tokens), tf.int32))

    return generate_elsewhere


class _LogSamples(keras.callbacks.Callback):
    """The log-only variant (no TensorBoard): the same rows, written by ``rows_factory``'s function."""

    def __init__(self, rows_factory):
        super().__init__()
        self.rows_factory = rows_factory
        self._rows = None

    def on_train_begin(self, logs=None):
        self._rows = self.rows_factory(self.model)

    def on_epoch_end(self, epoch, logs=None):
        self._rows()


def sample_callbacks(config, prompts: Sequence[str], preprocessor, workdir: Path) -> list[keras.callbacks.Callback]:
    """The callbacks ``LanguageModelTask.fit`` adds; none when ``config.logged_examples`` is 0."""
    prompts = list(prompts)[: config.logged_examples]
    if not prompts:
        return []
    tokens, seed = config.effective_sample_tokens, config.seed

    def rows_factory(model):
        generate = sampler(model, preprocessor, config.top_k)  # traced once; reads the current weights

        def rows():
            batch = tf.constant(prompts)
            greedy = generate(batch, tf.constant(tokens), tf.constant(0.0), tf.constant(seed)).numpy()
            sampled = generate(batch, tf.constant(tokens), tf.constant(config.temperature), tf.constant(seed)).numpy()
            table = [[prompt, g.decode("utf-8", "replace"), s.decode("utf-8", "replace")]
                     for prompt, g, s in zip(prompts, greedy, sampled)]
            for prompt, g, s in table:
                logger.info("sample | prompt %r | greedy %r | temperature %g: %r", prompt, g, config.temperature, s)
            return table

        return rows

    if config.tensorboard:
        title = f"continuations of validation prompts (greedy; sampled at temperature {config.temperature:g})."
        return [examples.TextExamples(examples.log_dir(workdir), TAG, title, ["prompt", "greedy", "sampled"],
                                      rows_factory)]
    return [_LogSamples(rows_factory)]
