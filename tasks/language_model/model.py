"""Recurrent language model (Zaremba, Sutskever & Vinyals 2014) and in-graph text generation.

Training model, a functional keras.Model:

    tokens int32 [B, T] → embedding → dropout → (rnn_1 → dropout) … (rnn_n → dropout) → logits float32 [B, T, V]

``rnn_i`` are LSTMs (or GRUs with reset_after=True) with cuDNN-eligible settings: tanh/sigmoid, no
recurrent dropout (dropout sits only on the non-recurrent connections, as in Zaremba et al.), not
unrolled. Each layer also returns its final state; training ignores it (every BPTT window starts
from zeros), ``Generator`` uses it to continue a prompt.

``Generator`` reuses the layers, fetched by name: the prompt runs through the whole layers once
(right-padded, with a mask, so each row's state is the state after its own last token), then a
``tf.while_loop`` feeds one token at a time through the cells. Sampling: greedy when temperature <= 0,
else softmax(logits / temperature) restricted to the top_k likeliest tokens (0 = all), drawn by
``tf.random.stateless_categorical`` with seed (seed, step): the same inputs and seed give the same text.
Everything is TensorFlow ops, so it runs inside the exported ``generate`` endpoint.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tasks.language_model.pipeline import PAD_ID

MAX_GENERATED_TOKENS = 10_000  # longest continuation one call of `generate` produces (bounds its time)
_NEVER = -1e9  # logit of a token that must not be drawn (finite: no NaN after scaling)


def build_model(config, vocabulary_size: int) -> keras.Model:
    def initializer():
        scale = config.init_scale
        return keras.initializers.RandomUniform(-scale, scale) if scale else None

    def initializers(*names):
        return {name: initializer() for name in names if config.init_scale}

    tokens = keras.Input(shape=(None,), dtype="int32", name="tokens")
    # No mask_zero: training windows are right-padded only at the very end of a split, and a causal
    # network's outputs before the padding do not depend on it (the loss ignores padded targets).
    vectors = keras.layers.Embedding(input_dim=vocabulary_size, output_dim=config.embedding_dim, name="embedding",
                                     **initializers("embeddings_initializer"))(tokens)
    vectors = keras.layers.Dropout(rate=config.dropout, name="embedding_dropout")(vectors)
    for index in range(1, config.layers + 1):
        arguments = dict(units=config.units, return_sequences=True, return_state=True, name=f"rnn_{index}",
                         **initializers("kernel_initializer", "recurrent_initializer", "bias_initializer"))
        if config.cell == "gru":
            layer = keras.layers.GRU(reset_after=True, **arguments)
        else:
            layer = keras.layers.LSTM(**arguments)
        vectors = layer(vectors)[0]
        vectors = keras.layers.Dropout(rate=config.dropout, name=f"rnn_{index}_dropout")(vectors)
    logits = keras.layers.Dense(units=vocabulary_size, dtype="float32", name="logits",
                                **initializers("kernel_initializer", "bias_initializer"))(vectors)
    return keras.Model(inputs=tokens, outputs=logits, name="language_model")


def loss():
    """Cross-entropy in nats per token; padding targets (id 0) are ignored."""
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD_ID)


def optimizer(config, learning_rate: float):
    clip = {"global_clipnorm": config.clip_norm} if config.clip_norm else {}
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate, **clip)
    return keras.optimizers.Adam(learning_rate=learning_rate, **clip)


def learning_rate_schedule(config, base: float):
    """Epoch index (0-based) → learning rate: ``base`` for the first ``decay_after_epochs`` epochs, then
    multiplied by ``learning_rate_decay`` once per epoch (Zaremba: 1/1.2 after epoch 6)."""
    return lambda epoch: base * config.learning_rate_decay ** max(0, epoch + 1 - config.decay_after_epochs)


def token_log_probabilities(model: keras.Model):
    """A tf.function (inputs, targets) int32 [B, T] → (log2 p(target) float32 [B, T], top-1 correct float32)."""

    @tf.function
    def score(inputs, targets):
        logits = tf.cast(model(inputs, training=False), tf.float32)
        log_probs = tf.nn.log_softmax(logits, axis=-1)
        picked = tf.gather(log_probs, targets, batch_dims=2)
        correct = tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), targets), tf.float32)
        return picked / tf.math.log(2.0), correct

    return score


class Generator:
    """Step-by-step view of a trained model for sampling (no variables of its own)."""

    def __init__(self, model: keras.Model, top_k: int = 0):
        self.embedding = model.get_layer("embedding")
        names = sorted((layer.name for layer in model.layers if layer.name.startswith("rnn_")
                        and not layer.name.endswith("_dropout")), key=lambda name: int(name.split("_")[1]))
        self.rnns = [model.get_layer(name) for name in names]
        self.output_layer = model.get_layer("logits")
        self.top_k = int(top_k)

    def prime(self, ids: tf.Tensor, lengths: tf.Tensor):
        """Prompt ids int32 [B, P] (right-padded, lengths >= 1) → (logits of the next token [B, V], states)."""
        mask = tf.sequence_mask(lengths, tf.shape(ids)[1])
        vectors = self.embedding(ids)
        states = []
        for rnn in self.rnns:
            outputs = rnn(vectors, mask=mask, training=False)
            vectors, layer_states = outputs[0], list(outputs[1:])
            states.append(layer_states)
        return self._logits(states[-1][0]), states  # the last layer's h = its output after the last token

    def step(self, tokens: tf.Tensor, states):
        """tokens int32 [B] → (logits [B, V], new states)."""
        vectors = tf.gather(self.embedding.embeddings, tokens)  # a plain lookup: no mask for the cells
        new_states = []
        for rnn, layer_states in zip(self.rnns, states):
            vectors, updated = rnn.cell(vectors, layer_states, training=False)
            new_states.append(list(updated) if isinstance(updated, (list, tuple)) else [updated])
        return self._logits(vectors), new_states

    def _logits(self, vectors):
        logits = tf.cast(self.output_layer(vectors), tf.float32)
        never = tf.equal(tf.range(tf.shape(logits)[-1]), PAD_ID)  # padding is never generated
        return tf.where(never[tf.newaxis, :], tf.constant(_NEVER, tf.float32), logits)

    def choose(self, logits, temperature, seed, step):
        """Greedy (temperature <= 0 or NaN) or seeded top-k sampling at ``temperature``: int32 [B]."""
        greedy = tf.argmax(logits, axis=-1, output_type=tf.int32)
        if self.top_k > 0:
            k = tf.minimum(self.top_k, tf.shape(logits)[-1])
            kth = tf.math.top_k(logits, k=k).values[:, -1:]
            logits = tf.where(logits < kth, tf.constant(_NEVER, tf.float32), logits)
        scaled = logits / tf.maximum(temperature, 1e-3)
        seeds = tf.stack([tf.cast(seed, tf.int32), tf.cast(step, tf.int32)])
        sampled = tf.random.stateless_categorical(scaled, 1, seed=seeds, dtype=tf.int32)[:, 0]
        return tf.where(temperature > 0, sampled, greedy)

    def generate(self, ids, lengths, num_tokens, temperature, seed) -> tf.Tensor:
        """Prompt ids [B, P] and lengths [B] → generated ids int32 [B, N], N = num_tokens clipped to
        [0, MAX_GENERATED_TOKENS]."""
        count = tf.clip_by_value(tf.cast(num_tokens, tf.int32), 0, MAX_GENERATED_TOKENS)
        temperature = tf.cast(temperature, tf.float32)
        logits, states = self.prime(ids, lengths)
        generated = tf.TensorArray(tf.int32, size=count, element_shape=tf.TensorShape([None]))

        def body(step, logits, states, generated):
            token = self.choose(logits, temperature, seed, step)
            logits, states = self.step(token, states)
            return step + 1, logits, states, generated.write(step, token)

        _, _, _, generated = tf.while_loop(lambda step, *_: step < count, body,
                                           (tf.constant(0), logits, states, generated))
        batch = tf.shape(ids)[0]
        # An empty TensorArray cannot be stacked (its element shape is not static): no tokens = [B, 0].
        return tf.cond(count > 0, lambda: tf.transpose(generated.stack()), lambda: tf.zeros([batch, 0], tf.int32))
