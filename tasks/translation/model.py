"""Encoder–decoder LSTM (Sutskever et al. 2014) with optional Luong/Bahdanau-style attention.

Training model (teacher forcing), a functional keras.Model:

    inputs  {"source": int32 [B, S], "decoder_input": int32 [B, T]}   (0 = padding, right-padded)
    source_embedding → encoder_lstm (bidirectional by default) ──(final h, c)──┐
                        └─ memory [B, S, U]          │
    decoder_input → target_embedding → decoder_lstm (initial state) → [attention over memory →
    concat → attention_combine (tanh)] → output_dropout → logits (float32) [B, T, V_target]

``Translator`` reuses the same layers (fetched by name) for step-by-step decoding: ``encode``
runs the encoder once, ``step`` runs one decoder step with ``decoder_lstm.cell``. Like greedy/beam
search (common.decoding) they are keras.ops, so this module imports without TensorFlow (issue 13):
under TensorFlow they run inside tf.function and the SavedModel (the tracing lives with the string
ops, in task.py and evaluation.py), under JAX as they are.
"""

from __future__ import annotations

import collections
from typing import Sequence

import keras
import numpy as np
from keras import ops

from common import decoding
from common.layers import SequenceAttention
from common.token_ids import END_ID, PAD_ID, START_ID


@keras.saving.register_keras_serializable(package="rnn_suite")
class MaskedTokenAccuracy(keras.metrics.Metric):
    """Teacher-forced token accuracy over the non-padding target positions (id != 0)."""

    def __init__(self, name: str = "token_accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.correct = self.add_variable(shape=(), initializer="zeros", name="correct")
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "int32")
        predicted = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
        valid = ops.cast(ops.not_equal(y_true, PAD_ID), "float32")
        self.correct.assign_add(ops.sum(ops.cast(ops.equal(predicted, y_true), "float32") * valid))
        self.total.assign_add(ops.sum(valid))

    def result(self):
        return ops.divide_no_nan(self.correct, self.total)

    def reset_state(self):
        self.correct.assign(0.0)
        self.total.assign(0.0)


def build_model(config, source_vocabulary_size: int, target_vocabulary_size: int) -> keras.Model:
    source = keras.Input(shape=(None,), dtype="int32", name="source")
    decoder_input = keras.Input(shape=(None,), dtype="int32", name="decoder_input")

    source_vectors = keras.layers.Embedding(
        input_dim=source_vocabulary_size, output_dim=config.embedding_dim, mask_zero=True, name="source_embedding"
    )(source)
    source_vectors = keras.layers.Dropout(rate=config.dropout, name="source_dropout")(source_vectors)
    # cuDNN-eligible LSTMs (tanh/sigmoid, no recurrent dropout, right padding).
    if config.bidirectional_encoder:
        # Each direction has lstm_units/2, so memory and the concatenated final states have lstm_units.
        memory, forward_h, forward_c, backward_h, backward_c = keras.layers.Bidirectional(
            keras.layers.LSTM(units=config.lstm_units // 2, return_sequences=True, return_state=True),
            merge_mode="concat", name="encoder_lstm",
        )(source_vectors)
        state_h = keras.layers.Concatenate(name="encoder_state_h")([forward_h, backward_h])
        state_c = keras.layers.Concatenate(name="encoder_state_c")([forward_c, backward_c])
    else:
        memory, state_h, state_c = keras.layers.LSTM(
            units=config.lstm_units, return_sequences=True, return_state=True, name="encoder_lstm"
        )(source_vectors)

    target_vectors = keras.layers.Embedding(
        input_dim=target_vocabulary_size, output_dim=config.embedding_dim, mask_zero=True, name="target_embedding"
    )(decoder_input)
    target_vectors = keras.layers.Dropout(rate=config.dropout, name="target_dropout")(target_vectors)
    decoded, _, _ = keras.layers.LSTM(
        units=config.lstm_units, return_sequences=True, return_state=True, name="decoder_lstm"
    )(target_vectors, initial_state=[state_h, state_c])

    if config.attention != "none":
        source_mask = ops.not_equal(source, PAD_ID)  # [B, S]
        context, _ = SequenceAttention(score=config.attention, units=config.lstm_units, name="attention")(
            decoded, memory, source_mask
        )
        decoded = keras.layers.Concatenate(name="attention_concat")([decoded, context])
        decoded = keras.layers.Dense(units=config.lstm_units, activation="tanh", name="attention_combine")(decoded)
    decoded = keras.layers.Dropout(rate=config.dropout, name="output_dropout")(decoded)
    logits = keras.layers.Dense(units=target_vocabulary_size, dtype="float32", name="logits")(decoded)
    return keras.Model(inputs={"source": source, "decoder_input": decoder_input}, outputs=logits, name="translator")


@keras.saving.register_keras_serializable(package="rnn_suite")
class SmoothedMaskedCrossEntropy(keras.losses.Loss):
    """Cross-entropy against (1 - smoothing) · one-hot + smoothing · uniform, mean over the non-padding
    target tokens (id != 0): the smoothed targets keep the decoder from over-confident word choices
    (Szegedy et al. 2016), which beam search then ranks better."""

    def __init__(self, smoothing: float = 0.1, name: str = "smoothed_cross_entropy", **kwargs):
        kwargs.pop("reduction", None)
        super().__init__(name=name, reduction="sum", **kwargs)  # each token's share of the mean, summed
        self.smoothing = float(smoothing)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        log_probs = ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)
        gold = -ops.squeeze(ops.take_along_axis(log_probs, y_true[..., None], axis=-1), axis=-1)
        uniform = -ops.mean(log_probs, axis=-1)
        valid = ops.cast(ops.not_equal(y_true, PAD_ID), "float32")
        per_token = ((1.0 - self.smoothing) * gold + self.smoothing * uniform) * valid
        return per_token / ops.maximum(ops.sum(valid), 1.0)

    def get_config(self):
        return {**super().get_config(), "smoothing": self.smoothing}


def loss_and_metrics(label_smoothing: float = 0.0):
    """Masked cross-entropy (padding id 0 ignored, mean over real tokens), label-smoothed when asked, and
    token accuracy."""
    if label_smoothing > 0:
        return SmoothedMaskedCrossEntropy(label_smoothing), [MaskedTokenAccuracy()]
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD_ID)
    return loss, [MaskedTokenAccuracy()]


class Translator:
    """Step-by-step view of a trained model, for common.decoding (no variables of its own).

    Takes and returns the backend's tensors (NumPy arrays and, under JAX, the preprocessor's eager TF
    tensors are converted on the way in)."""

    def __init__(self, model: keras.Model):
        self.source_embedding = model.get_layer("source_embedding")
        self.encoder = model.get_layer("encoder_lstm")
        self.target_embedding = model.get_layer("target_embedding")
        self.decoder = model.get_layer("decoder_lstm")
        self.output_layer = model.get_layer("logits")
        names = {layer.name for layer in model.layers}
        self.attention = model.get_layer("attention") if "attention" in names else None
        self.combine = model.get_layer("attention_combine") if self.attention is not None else None
        # Padding and the start symbol are never valid outputs: a constant [1, V] mask.
        ids = np.arange(int(self.output_layer.units))
        self.forbidden = ((ids == PAD_ID) | (ids == START_ID))[None, :]
        # One compiled search per shape under JAX (TensorFlow traces its callers: endpoints, evaluation).
        self.greedy = decoding.compiled(self.greedy, model, static_argnums=(1,))
        self.beam = decoding.compiled(self.beam, model, static_argnums=(1, 2, 3))

    def encode(self, source_ids):
        """int [N, S] → decoder state {"h", "c": [N, U], "memory": [N, S, U], "memory_mask": [N, S] float}."""
        source_ids = ops.cast(source_ids, "int32")
        mask = ops.not_equal(source_ids, PAD_ID)
        vectors = self.source_embedding(source_ids)
        outputs = self.encoder(vectors, mask=mask)
        if len(outputs) == 5:  # bidirectional: sequence, forward h, c, backward h, c
            memory, forward_h, forward_c, backward_h, backward_c = outputs
            state_h = ops.concatenate([forward_h, backward_h], axis=-1)
            state_c = ops.concatenate([forward_c, backward_c], axis=-1)
        else:
            memory, state_h, state_c = outputs
        return {"h": state_h, "c": state_c, "memory": memory, "memory_mask": ops.cast(mask, memory.dtype)}

    def greedy(self, source_ids, max_length: int):
        """int [N, S] → (tokens int32 [N, max_length], summed log-probability float32 [N])."""
        state = self.encode(source_ids)
        return decoding.greedy_search(self.step, state, ops.shape(state["h"])[0], START_ID, END_ID, max_length)

    def beam(self, source_ids, max_length: int, beam_width: int, length_penalty: float):
        """int [N, S] → (best beam's tokens int32 [N, max_length], its normalised score float32 [N])."""
        state = self.encode(source_ids)
        return decoding.beam_search(self.step, state, ops.shape(state["h"])[0], START_ID, END_ID, max_length,
                                    beam_width=beam_width, length_penalty=length_penalty)

    def step(self, tokens, state: dict):
        """tokens int32 [N] (previous output) → (log_probs float32 [N, V], new state)."""
        # A plain lookup: the layer call would attach a padding mask that the cell cannot use.
        vectors = ops.take(self.target_embedding.embeddings, tokens, axis=0)  # [N, E]
        output, (state_h, state_c) = self.decoder.cell(vectors, [state["h"], state["c"]])
        if self.attention is not None:
            context, _ = self.attention(output[:, None, :], state["memory"], state["memory_mask"] > 0)
            output = self.combine(ops.concatenate([output, context[:, 0, :]], axis=-1))
        logits = ops.cast(self.output_layer(output), "float32")
        logits = ops.where(self.forbidden, decoding.NEGATIVE_INFINITY, logits)
        new_state = {**state, "h": state_h, "c": state_c}
        return ops.log_softmax(logits, axis=-1), new_state


class WordByWordBaseline:
    """Translates each source word into the target word most associated with it, in source order.

    Association = Dice coefficient of sentence co-occurrence on the training pairs,
    2·c(s, t) / (c(s) + c(t)). It knows the lexicon but no word order, agreement or context: the
    gap to the seq2seq model measures what reading the whole sentence buys. The fitted ``lexicon``
    (source word → target word) is part of the task's saved preprocessor.
    """

    def __init__(self, lexicon: dict[str, str]):
        self.lexicon = dict(lexicon)

    @classmethod
    def fit(cls, source_tokens: Sequence[Sequence[str]],
            target_tokens: Sequence[Sequence[str]]) -> "WordByWordBaseline":
        source_counts: collections.Counter = collections.Counter()
        target_counts: collections.Counter = collections.Counter()
        pair_counts: collections.Counter = collections.Counter()
        for source, target in zip(source_tokens, target_tokens):
            source_set, target_set = set(source), set(target)
            source_counts.update(source_set)
            target_counts.update(target_set)
            pair_counts.update((s, t) for s in source_set for t in target_set)
        best: dict[str, tuple[float, str]] = {}
        # Sorted, with a strict ">": ties go to the alphabetically first target word (deterministic).
        for (source_word, target_word), count in sorted(pair_counts.items()):
            dice = 2.0 * count / (source_counts[source_word] + target_counts[target_word])
            if source_word not in best or dice > best[source_word][0]:
                best[source_word] = (dice, target_word)
        return cls({source_word: target_word for source_word, (_, target_word) in best.items()})

    def translate(self, source_tokens: Sequence[Sequence[str]]) -> list[list[str]]:
        return [[self.lexicon[w] for w in tokens if w in self.lexicon] for tokens in source_tokens]
