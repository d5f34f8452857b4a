"""Review records → token ids → tf.data; the text standardisation shared by training and export.

Token ids are right-padded with 0 (the Embedding's mask value), so a masked LSTM may take the cuDNN
kernel on a GPU. Reviews longer than ``sequence_length`` tokens keep their first tokens.
"""

from __future__ import annotations

import random
import re
import string
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from common.pipelines import AUTOTUNE
from data.aclimdb import Review

_PUNCTUATION = f"[{re.escape(string.punctuation)}]"
_VECTORIZE_CHUNK = 2048  # reviews per call of the vectorizer while turning a split into ids


def standardize(texts: tf.Tensor) -> tf.Tensor:
    """Lower-case (Unicode), drop ``<br />`` line breaks and ASCII punctuation. [batch] string → same."""
    # Invalid UTF-8 from a caller becomes U+FFFD instead of an error inside the graph.
    texts = tf.strings.unicode_transcode(texts, input_encoding="UTF-8", output_encoding="UTF-8", errors="replace")
    texts = tf.strings.lower(texts, encoding="utf-8")
    texts = tf.strings.regex_replace(texts, r"<br\s*/?>", " ")
    return tf.strings.regex_replace(texts, _PUNCTUATION, "")


def make_vectorizer(max_tokens: int, texts: Sequence[str]) -> keras.layers.TextVectorization:
    """Word-level vocabulary of the ``max_tokens`` most frequent words of ``texts`` (the training split)."""
    vectorizer = keras.layers.TextVectorization(
        max_tokens=max_tokens, standardize=standardize, split="whitespace", output_mode="int", ragged=True,
        name="text_vectorization",
    )
    vectorizer.adapt(tf.data.Dataset.from_tensor_slices(list(texts)).batch(_VECTORIZE_CHUNK))
    return vectorizer


def make_ngram_vectorizer(max_tokens: int, ngrams: int, texts: Sequence[str]) -> keras.layers.TextVectorization:
    """TF-IDF of 1..``ngrams``-grams (the baseline's features), fitted on ``texts``."""
    vectorizer = keras.layers.TextVectorization(
        max_tokens=max_tokens, standardize=standardize, split="whitespace", ngrams=ngrams, output_mode="tf_idf",
        name="ngram_tf_idf",
    )
    vectorizer.adapt(tf.data.Dataset.from_tensor_slices(list(texts)).batch(_VECTORIZE_CHUNK))
    return vectorizer


def to_padded_ids(ragged_ids: tf.RaggedTensor, sequence_length: int) -> tf.Tensor:
    """[batch, (tokens)] ragged → [batch, width] int, right-padded with 0, cut at ``sequence_length``.

    width is the longest row after the cut, but at least 1 so that a batch of empty reviews still
    has a time axis (an all-padding row is fully masked and yields the model's prior).
    """
    ragged_ids = ragged_ids[:, :sequence_length]
    width = tf.maximum(tf.cast(tf.reduce_max(ragged_ids.row_lengths()), tf.int32), 1)
    padded = ragged_ids.to_tensor(default_value=0, shape=tf.stack([ragged_ids.nrows(out_type=tf.int32), width]))
    return tf.cast(padded, tf.int32)


def vectorize(vectorizer: keras.layers.TextVectorization, texts: Sequence[str], sequence_length: int) -> tf.RaggedTensor:
    """All ``texts`` → ragged int32 ids [reviews, (≤ sequence_length)]."""
    chunks = []
    for start in range(0, len(texts), _VECTORIZE_CHUNK):
        ids = vectorizer(tf.constant(list(texts[start : start + _VECTORIZE_CHUNK])))
        chunks.append(tf.cast(ids[:, :sequence_length], tf.int32))
    if not chunks:
        return tf.ragged.constant([], dtype=tf.int32, ragged_rank=1)
    return tf.concat(chunks, axis=0)


def labels_of(reviews: Sequence[Review]) -> np.ndarray:
    return np.asarray([r.label for r in reviews], dtype=np.float32)


def training_dataset(
    ids: tf.RaggedTensor, labels: np.ndarray, batch_size: int, shuffle: bool, seed: int, bucket_width: int,
    sequence_length: int,
) -> tf.data.Dataset:
    """(ids [batch, width], labels [batch]) batches; reviews of similar length share a batch.

    Shuffle before batching; with ``bucket_width`` > 0 batches are drawn from length bands so that
    short reviews are not padded to the longest one (the LSTM's cost grows with the padded width).
    """
    # Slices of a ragged tensor are ragged-rank-0 values; an identity map turns them into plain
    # 1-D tensors, which bucket_by_sequence_length (padded_batch) needs.
    dataset = tf.data.Dataset.from_tensor_slices((ids, labels)).map(_plain).cache()
    if shuffle:
        dataset = dataset.shuffle(buffer_size=max(int(ids.nrows()), 1), seed=seed, reshuffle_each_iteration=True)
    if bucket_width > 0 and sequence_length > bucket_width:
        boundaries = list(range(bucket_width, sequence_length + 1, bucket_width))
        dataset = dataset.bucket_by_sequence_length(
            element_length_func=lambda review, label: tf.shape(review)[0],
            bucket_boundaries=boundaries,
            bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
            pad_to_bucket_boundary=False,
        )
        dataset = dataset.map(lambda review, label: (_at_least_one_step(review), label), num_parallel_calls=AUTOTUNE)
        # Bucketing hides the number of batches from tf.data; it is known from the lengths, and Keras
        # needs it to end an epoch without an "ran out of data" warning (and to show progress).
        bands = np.searchsorted(boundaries, ids.row_lengths().numpy(), side="right")
        batches = int(sum(-(-count // batch_size) for count in np.bincount(bands) if count))
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(batches))
    else:
        dataset = dataset.ragged_batch(batch_size).map(
            lambda review, label: (to_padded_ids(review, sequence_length), label), num_parallel_calls=AUTOTUNE
        )
    return dataset.prefetch(AUTOTUNE)


def _plain(review, label):
    return review, label


def _at_least_one_step(padded: tf.Tensor) -> tf.Tensor:
    width = tf.shape(padded)[1]
    return tf.cond(width > 0, lambda: padded, lambda: tf.zeros([tf.shape(padded)[0], 1], padded.dtype))


def prediction_dataset(ids: tf.RaggedTensor, batch_size: int, sequence_length: int) -> tuple[tf.data.Dataset, np.ndarray]:
    """Batches of padded ids in order of length (less padding), and the order to undo it.

    ``probabilities[order] = model.predict(dataset)`` puts the outputs back in the reviews' order.
    """
    lengths = ids.row_lengths().numpy()
    order = np.argsort(lengths, kind="stable")
    dataset = tf.data.Dataset.from_tensor_slices(tf.gather(ids, order)).ragged_batch(batch_size)
    return dataset.map(lambda batch: to_padded_ids(batch, sequence_length), num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE), order


def stratified_split(reviews: Sequence[Review], fraction: float, seed: int) -> tuple[list[Review], list[Review]]:
    """(rest, held_out): ``fraction`` of each label held out, chosen with ``seed``."""
    rng = random.Random(seed)
    rest, held_out = [], []
    for label in (0, 1):
        group = [r for r in reviews if r.label == label]
        rng.shuffle(group)
        count = int(round(len(group) * fraction))
        held_out += group[:count]
        rest += group[count:]
    rng.shuffle(rest)
    rng.shuffle(held_out)
    return rest, held_out
