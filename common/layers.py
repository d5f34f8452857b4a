"""Reusable layers for the sequence tasks.

SequenceAttention: global attention of every query step over a masked memory sequence (Luong et
al. 2015 "dot" and "general" scores; Bahdanau et al. 2015 "additive" score). It is used after the
decoder LSTM (Luong's placement), so one layer serves training (all target steps at once) and
step-by-step decoding (one query step) with the same weights.
"""

from __future__ import annotations

import keras
from keras import ops

SCORES = ("dot", "general", "additive")


@keras.saving.register_keras_serializable(package="rnn_suite")
class SequenceAttention(keras.layers.Layer):
    """context, weights = SequenceAttention(score)(query [B, T, Dq], memory [B, S, Dm], memory_mask [B, S]).

    context [B, T, Dm] is the weighted sum of memory rows; weights [B, T, S] sum to 1 over the
    unmasked memory steps (a row whose memory is entirely masked gets uniform weights, no NaN).
    score: "dot" q·m (needs Dq == Dm), "general" q·W·m, "additive" v·tanh(Wq q + Wm m).
    units: size of the additive score's hidden layer (ignored by the other scores).
    """

    def __init__(self, score: str = "general", units: int = 128, **kwargs):
        super().__init__(**kwargs)
        if score not in SCORES:
            raise ValueError(f"score={score!r}; expected one of {list(SCORES)}")
        if units < 1:
            raise ValueError(f"units={units}: expected at least 1")
        self.score = score
        self.units = units

    def build(self, query_shape, memory_shape, memory_mask_shape=None):
        query_size, memory_size = query_shape[-1], memory_shape[-1]
        if self.score == "dot" and query_size != memory_size:
            raise ValueError(f"score='dot' needs equal query and memory sizes; got {query_size} and {memory_size}")
        if self.score == "general":
            self.kernel = self.add_weight(name="kernel", shape=(query_size, memory_size), initializer="glorot_uniform")
        if self.score == "additive":
            self.query_kernel = self.add_weight(name="query_kernel", shape=(query_size, self.units),
                                                initializer="glorot_uniform")
            self.memory_kernel = self.add_weight(name="memory_kernel", shape=(memory_size, self.units),
                                                 initializer="glorot_uniform")
            self.vector = self.add_weight(name="vector", shape=(self.units,), initializer="glorot_uniform")
        self.built = True

    def call(self, query, memory, memory_mask=None, mask=None):
        # ``mask`` (Keras' implicit masks of the inputs) is ignored: the memory mask is explicit and
        # the outputs carry no mask (the loss ignores padding by its id instead).
        if self.score == "dot":
            scores = ops.matmul(query, ops.transpose(memory, (0, 2, 1)))  # [B, T, S]
        elif self.score == "general":
            scores = ops.matmul(ops.matmul(query, self.kernel), ops.transpose(memory, (0, 2, 1)))
        else:
            projected_query = ops.matmul(query, self.query_kernel)[:, :, None, :]  # [B, T, 1, U]
            projected_memory = ops.matmul(memory, self.memory_kernel)[:, None, :, :]  # [B, 1, S, U]
            scores = ops.sum(ops.tanh(projected_query + projected_memory) * self.vector, axis=-1)  # [B, T, S]
        # Softmax in float32 (also under mixed precision), masked steps get a large negative score.
        scores = ops.cast(scores, "float32")
        if memory_mask is not None:
            mask = ops.cast(memory_mask, "bool")[:, None, :]  # [B, 1, S]
            scores = ops.where(mask, scores, ops.full_like(scores, -1e9))
        weights = ops.softmax(scores, axis=-1)
        context = ops.matmul(ops.cast(weights, memory.dtype), memory)  # [B, T, Dm]
        return context, weights

    def compute_mask(self, query, memory, memory_mask=None, mask=None):
        return None

    def compute_output_shape(self, query_shape, memory_shape, memory_mask_shape=None):
        return (
            (query_shape[0], query_shape[1], memory_shape[-1]),
            (query_shape[0], query_shape[1], memory_shape[1]),
        )

    def get_config(self):
        return {**super().get_config(), "score": self.score, "units": self.units}
