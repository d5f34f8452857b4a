"""WORKDIR/attention.png: where the decoder looked while it translated a few test sentences.

For each sentence, the attention weights of its greedy translation: one row per generated token
(up to and including [END]), one column per source token as the encoder read it (reversed with
``reverse_source``); tokens are words, or subword pieces with ``subword_vocabulary``. A model without
attention (``attention="none"``) gets no picture.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from common import text
from common.io import atomic_path
from tasks.translation.model import Translator

logger = logging.getLogger(__name__)


def has_attention(model: keras.Model) -> bool:
    return any(layer.name == "attention" for layer in model.layers)


def attention_examples(model: keras.Model, preprocessor, sentences: Sequence[str],
                       max_length: int) -> list[tuple[list[str], list[str], np.ndarray]]:
    """Greedy translations of ``sentences`` and the attention that produced them, one triple per
    sentence: (source words in the encoder's order, generated words up to and including [END],
    weights float32 [generated, source], each row summing to 1)."""
    if not has_attention(model):
        raise ValueError(f"model {model.name!r} has no layer named 'attention' (config attention='none')")
    source_ids = preprocessor.encode(tf.constant(list(sentences))).numpy()  # int32 [N, S]
    tokens = ops.convert_to_numpy(Translator(model).greedy(source_ids, max_length)[0])  # [N, max_length]: 0 after END
    # Generated length: up to and including the first [END] (all max_length steps when none came).
    ends = [np.flatnonzero(row == text.END_ID) for row in tokens]
    lengths = [int(end[0]) + 1 if len(end) else max_length for end in ends]
    # Greedy decoding feeds back its own previous word, so teacher forcing the training graph on
    # [START] + that output gives the decoder the same inputs, hence the same attention weights.
    decoder_input = np.zeros([len(tokens), max(lengths)], np.int32)
    decoder_input[:, 0] = text.START_ID
    for row, length in enumerate(lengths):
        decoder_input[row, 1:length] = tokens[row, : length - 1]
    weights_model = keras.Model(model.inputs, model.get_layer("attention").output[1])  # [N, T, S]
    inputs = {"source": source_ids, "decoder_input": decoder_input}
    weights = ops.convert_to_numpy(weights_model(inputs, training=False))
    examples = []
    for row, (sentence, length) in enumerate(zip(sentences, lengths)):
        kept = int(np.count_nonzero(source_ids[row]))
        # Labels as written (subword pieces without SentencePiece's "▁"); ids would show [UNK] for rare words.
        words = preprocessor.source_units([sentence])[0][: preprocessor.source_length]
        words = words[::-1] if preprocessor.reverse_source else words
        if len(words) != kept:  # an empty sentence is encoded as one [UNK]
            words = [preprocessor.source_vocabulary[i] for i in source_ids[row, :kept]]
        generated = preprocessor.target_labels(tokens[row, :length])
        examples.append((words, generated, weights[row, :length, :kept]))
    return examples


def write_attention(path: Path, model: keras.Model, preprocessor, sentences: Sequence[str], max_length: int) -> bool:
    """Draws ``attention_examples`` of up to 4 sentences into ``path`` (PNG); False (and a log line)
    when the model has no attention or there is no sentence."""
    if not has_attention(model):
        logger.info("No attention picture: the model has no attention (attention='none')")
        return False
    sentences = list(sentences)[:4]
    if not sentences:
        logger.info("No attention picture: no test sentence")
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    examples = attention_examples(model, preprocessor, sentences, max_length)
    columns = 2 if len(examples) > 1 else 1
    rows = (len(examples) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(7 * columns, 6 * rows), squeeze=False)
    order = "reversed, as the encoder read them" if preprocessor.reverse_source else "as the encoder read them"
    for axis, (sentence, (source, generated, weights)) in zip(axes.flat, zip(sentences, examples)):
        image = axis.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
        axis.set_xticks(range(len(source)), source, rotation=90, fontsize=8)
        axis.set_yticks(range(len(generated)), generated, fontsize=8)
        axis.set_xlabel(f"source tokens ({order})")
        axis.set_ylabel("generated tokens (greedy)")
        axis.set_title(sentence if len(sentence) <= 70 else sentence[:67] + "...", fontsize=9)
        figure.colorbar(image, ax=axis, fraction=0.04)
    for axis in list(axes.flat)[len(examples):]:
        axis.set_visible(False)
    figure.suptitle("Attention weights of greedy decoding (each row sums to 1)")
    figure.tight_layout()
    with atomic_path(path, suffix=".png") as temporary:
        figure.savefig(temporary, dpi=90)
    plt.close(figure)
    return True
