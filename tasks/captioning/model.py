"""Show and Tell (Vinyals et al. 2015): the image embedding is the LSTM's first input, then the words.

Training graph (teacher forcing), B = batch, T = max_caption_length + 1, D = feature size:

    image_features [B, D] ─ Dense(E) "image_embedding" ─ Dropout ─ Reshape [B, 1, E] ─┐
                                                                                   LSTM "decoder_lstm" (t = -1)
    caption_tokens [B, T] ─ Embedding(V, E, mask_zero) "word_embedding" ─ Dropout ─ LSTM "decoder_lstm" (same
                            weights, initial state = the state after the image step) ─ Dropout
                            ─ Dense(V) "word_logits" → logits [B, T, V] (float32)

Calling one LSTM layer twice is exactly the paper's "image at t = -1, words from t = 0" with shared
weights, and lets generation reuse the same layer one step at a time (``CaptionGenerator``).
The padding mask of the words travels to the loss, so padded positions cost nothing.

The image encoder (common/encoders.py, held by the fitted ``pipeline.Preprocessor``) is separate: its
pooled features are cached on disk and fed here. For the synthetic default the encoder is
``small_cnn`` pretrained from scratch to predict which words the captions of an image contain
(common.encoder_pretraining.pretrain_encoder), then frozen.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from common import decoding, progress
from common.token_ids import END_ID, PAD_ID, START_ID, UNKNOWN_ID


def build_model(config, vocabulary_size: int, feature_dim: int) -> keras.Model:
    """Functional Show-and-Tell decoder; ``vocabulary_size`` and ``feature_dim`` come from the data."""
    length = config.max_caption_length + 1
    image_features = keras.Input(shape=(feature_dim,), name="image_features")
    caption_tokens = keras.Input(shape=(length,), dtype="int32", name="caption_tokens")
    image_embedding = keras.layers.Dense(units=config.embedding_dim, name="image_embedding")(image_features)
    image_embedding = keras.layers.Dropout(rate=config.dropout, name="image_dropout")(image_embedding)
    image_step = keras.layers.Reshape(target_shape=(1, config.embedding_dim), name="image_step")(image_embedding)
    word_embedding = keras.layers.Embedding(
        input_dim=vocabulary_size, output_dim=config.embedding_dim, mask_zero=True, name="word_embedding"
    )(caption_tokens)  # [B, T, E], mask [B, T]
    word_embedding = keras.layers.Dropout(rate=config.dropout, name="word_dropout")(word_embedding)
    # cuDNN-eligible configuration (tanh/sigmoid, no recurrent dropout, not unrolled, with bias).
    lstm = keras.layers.LSTM(units=config.lstm_units, return_sequences=True, return_state=True, name="decoder_lstm")
    _, image_hidden, image_cell = lstm(image_step)  # t = -1: the image only
    sequence, _, _ = lstm(word_embedding, initial_state=[image_hidden, image_cell])  # [B, T, H]
    sequence = keras.layers.Dropout(rate=config.dropout, name="output_dropout")(sequence)
    logits = keras.layers.Dense(units=vocabulary_size, dtype="float32", name="word_logits")(sequence)
    return keras.Model(inputs={"image_features": image_features, "caption_tokens": caption_tokens}, outputs=logits,
                       name="show_and_tell")


class CaptionGenerator:
    """Greedy / beam-search generation with the layers of a trained ``build_model`` model.

    Written with keras.ops (common.decoding too): eager or inside tf.function and a SavedModel endpoint
    under TensorFlow, and under JAX. It only calls the model's layers, so it decodes with their current weights.
    """

    def __init__(self, model: keras.Model, max_words: int):
        self.image_embedding = model.get_layer("image_embedding")
        self.word_embedding = model.get_layer("word_embedding")
        self.lstm = model.get_layer("decoder_lstm")
        self.word_logits = model.get_layer("word_logits")
        self.vocabulary_size = int(self.word_logits.units)
        self.max_length = max_words + 1  # words + <end>
        # Tokens the decoder must never emit: padding, <unk>, <start>.
        banned = [PAD_ID, UNKNOWN_ID, START_ID]
        self.banned = np.array([[i in banned for i in range(self.vocabulary_size)]])  # [1, V]
        # One compiled search per shape under JAX (TensorFlow traces its callers: decoding.traced, the endpoints).
        self.generate = decoding.compiled(self.generate, model, static_argnums=(1, 2))

    def initial_state(self, features):
        """LSTM state after reading the image, [N, H] each."""
        step = ops.expand_dims(self.image_embedding(features), 1)  # [N, 1, E]
        _, hidden, cell = self.lstm(step)
        return hidden, cell

    def step(self, tokens, state):
        """step_fn of common.decoding: tokens int32 [N] → (log_probs [N, V], new state)."""
        hidden, cell = state
        embedded = ops.expand_dims(self.word_embedding(tokens), 1)  # [N, 1, E]
        output, hidden, cell = self.lstm(embedded, initial_state=[hidden, cell])
        logits = ops.cast(self.word_logits(output[:, 0, :]), "float32")  # [N, V]
        logits = ops.where(self.banned, decoding.NEGATIVE_INFINITY, logits)
        return ops.log_softmax(logits, axis=-1), (hidden, cell)

    def generate(self, features, beam_width: int, length_penalty: float = 0.0):
        """features [N, D] → (tokens int32 [N, max_words + 1] ending with <end> then 0, score [N])."""
        features = ops.cast(ops.convert_to_tensor(features), "float32")
        batch_size = ops.shape(features)[0]
        state = self.initial_state(features)
        if beam_width <= 1:
            return decoding.greedy_search(
                self.step, state, batch_size, START_ID, END_ID, self.max_length
            )
        return decoding.beam_search(
            self.step, state, batch_size, START_ID, END_ID, self.max_length,
            beam_width=beam_width, length_penalty=length_penalty,
        )


def generate(model: keras.Model, features: np.ndarray, max_words: int, beam_width: int,
             length_penalty: float = 0.0, batch_size: int = 256) -> np.ndarray:
    """Token ids int32 [N, max_words + 1] generated for features [N, D], batch by batch, in one traced graph."""
    generator = CaptionGenerator(model, max_words)
    run = decoding.traced(lambda f: generator.generate(f, beam_width, length_penalty)[0],
                          [([None, features.shape[1]], "float32")])
    starts = range(0, len(features), batch_size)
    search = "greedy decoding" if beam_width <= 1 else f"beam search (width {beam_width})"
    batches = [ops.convert_to_numpy(run(ops.convert_to_tensor(features[s : s + batch_size])))
               for s in progress.track(starts, len(starts), f"{search} of {len(features):,} images", unit="batches")]
    return np.concatenate(batches, axis=0)


def teacher_forced(model: keras.Model, dataset) -> dict[str, float]:
    """Per-token cross-entropy (nats), perplexity and next-word accuracy over a caption dataset.

    Corpus-level: sums over every non-padding target token of every batch, divided once.
    """
    total, correct, count = 0.0, 0, 0
    for inputs, targets in dataset:
        inputs, targets = keras.tree.map_structure(np.asarray, inputs), np.asarray(targets)  # any backend
        logits = ops.cast(model(inputs, training=False), "float32")
        mask = ops.cast(ops.not_equal(targets, PAD_ID), "float32")
        losses = ops.sparse_categorical_crossentropy(targets, logits, from_logits=True)
        total += float(ops.sum(losses * mask))
        hits = ops.cast(ops.equal(ops.cast(ops.argmax(logits, axis=-1), "int32"), targets), "float32")
        correct += int(ops.sum(hits * mask))
        count += int(ops.sum(mask))
    return {"cross_entropy_per_token": total / count, "perplexity": float(np.exp(total / count)),
            "token_accuracy": correct / count}
