"""Recurrent language model (Zaremba, Sutskever & Vinyals 2014) and in-graph text generation.

Training model, a functional keras.Model:

    tokens int32 [B, T] → embedding → dropout → (rnn_1 → dropout) … (rnn_n → dropout) → logits float32 [B, T, V]

``rnn_i`` are LSTMs (or GRUs with reset_after=True) with cuDNN-eligible settings: tanh/sigmoid, no
recurrent dropout (dropout sits only on the non-recurrent connections, as in Zaremba et al.), not
unrolled. Each layer also returns its final state; ``Generator`` uses it to continue a prompt. By
default every BPTT window starts from zeros. With ``config.carry_state`` (char-rnn, Zaremba) the layers
are ``CarriedLSTM`` / ``CarriedGRU``: in training calls only, each row starts from the state that row
ended the previous batch with (the batches are contiguous streams: pipeline.stream_windows), kept in
non-trainable variables of shape [batch_size, units] and zeroed at the start of each epoch
(``ResetCarriedState``). Inference (validation, ``Generator``, the export) is the plain layer's.
``carried_token_log_probabilities`` scores streams window after window with the state passed on explicitly.

``Generator`` reuses the layers, fetched by name: the prompt runs through the whole layers once
(right-padded, with a mask, so each row's state is the state after its own last token), then a
``keras.ops.while_loop`` feeds one token at a time through the cells, writing into a fixed-shape [B, N]
buffer. Sampling: greedy when temperature <= 0, else softmax(logits / temperature) restricted to the top_k
likeliest tokens (0 = all), drawn with the seed pair (seed, step): the same inputs and seed give the same
text. The loop is keras.ops, so it runs inside the exported ``generate`` endpoint (TensorFlow) and under JAX;
only the draw itself is per backend (``_categorical``): TensorFlow's ``stateless_categorical``, as before the
port (the README's sampled-lines figures came from it), or ``jax.random``. The two backends draw different
(equally distributed) samples from the same logits and seed; greedy decoding is the same on both.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from common import decoding
from tasks.language_model.token_ids import PAD_ID

EVALUATION_BATCH = 64  # windows per scoring call (carry_state: streams read side by side)
MAX_GENERATED_TOKENS = 10_000  # longest continuation one call of `generate` produces (bounds its time)
_NEVER = -1e9  # logit of a token that must not be drawn (finite: no NaN after scaling)
_LN_2 = float(np.log(2.0))


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
            arguments["reset_after"] = True
        if config.carry_state:
            layer = (CarriedGRU if config.cell == "gru" else CarriedLSTM)(carry_batch=config.batch_size, **arguments)
        else:
            layer = (keras.layers.GRU if config.cell == "gru" else keras.layers.LSTM)(**arguments)
        vectors = layer(vectors)[0]
        vectors = keras.layers.Dropout(rate=config.dropout, name=f"rnn_{index}_dropout")(vectors)
    logits = keras.layers.Dense(units=vocabulary_size, dtype="float32", name="logits",
                                **initializers("kernel_initializer", "bias_initializer"))(vectors)
    return keras.Model(inputs=tokens, outputs=logits, name="language_model")


class _CarriedStateMixin:
    """In training calls without an explicit initial state, each row starts from the state it ended the previous
    training batch with: float32 variables [carry_batch, state size] (non-trainable, so the optimizer never sees
    them; under JAX they travel like BatchNormalization's moving averages). Gradients stop at the batch boundary
    (truncated BPTT): the carried value is a variable, not a function of the weights. Training batches must hold
    exactly ``carry_batch`` rows (pipeline.stream_windows). Every other call is the parent layer's, unchanged."""

    def __init__(self, *args, carry_batch: int, **kwargs):
        super().__init__(*args, **kwargs)
        if int(carry_batch) < 1:
            raise ValueError(f"{type(self).__name__}: carry_batch={carry_batch} must be at least 1 (the batch size)")
        self.carry_batch = int(carry_batch)
        self.carried = []

    def build(self, sequences_shape, initial_state_shape=None):
        super().build(sequences_shape, initial_state_shape)
        if not self.carried:
            self.carried = [self.add_weight(shape=(self.carry_batch, size), initializer="zeros", trainable=False,
                                            dtype="float32", name=f"carried_state_{index}")
                            for index, size in enumerate(self.state_size)]

    def call(self, sequences, initial_state=None, mask=None, training=False):
        carry = bool(training) and initial_state is None
        if carry:
            initial_state = [ops.cast(variable, self.compute_dtype) for variable in self.carried]
        outputs = super().call(sequences, initial_state=initial_state, mask=mask, training=training)
        if carry:
            for variable, state in zip(self.carried, outputs[1:]):
                variable.assign(ops.cast(state, "float32"))
        return outputs

    @property
    def non_parameter_variables(self) -> list:
        """The carried states: buffers, not parameters (common.training.parameter_count leaves them out)."""
        return list(self.carried)

    def reset_carried_state(self) -> None:
        for variable in self.carried:
            variable.assign(ops.zeros(variable.shape, "float32"))

    def get_config(self):
        return {**super().get_config(), "carry_batch": self.carry_batch}


@keras.saving.register_keras_serializable(package="language_model")
class CarriedLSTM(_CarriedStateMixin, keras.layers.LSTM):
    """keras.layers.LSTM whose training calls carry each row's state across batches (_CarriedStateMixin)."""


@keras.saving.register_keras_serializable(package="language_model")
class CarriedGRU(_CarriedStateMixin, keras.layers.GRU):
    """keras.layers.GRU whose training calls carry each row's state across batches (_CarriedStateMixin)."""


class ResetCarriedState(keras.callbacks.Callback):
    """Zeros the carried states whenever the training streams start again from their beginnings: at the start of
    every epoch, or, with ``period`` (an epoch that is not one pass: a short text repeated, see
    ``Config.min_steps_per_epoch``), every ``period`` batches counted from this process's first (a resumed run's
    iterator starts at the streams' beginnings too). With steps_per_execution > 1 the reset falls at the first
    execution that starts in a new pass."""

    def __init__(self, period: int | None = None):
        super().__init__()
        self.period = period
        self._base = self._done = 0  # batches trained before this epoch / so far, in this process
        self._pass = -1

    def on_train_begin(self, logs=None):
        self._base = self._done = 0
        self._pass = -1

    def on_epoch_begin(self, epoch, logs=None):
        self._base = self._done
        if self.period is None:
            self._reset()

    def on_train_batch_begin(self, batch, logs=None):
        if self.period is not None and (self._base + batch) // self.period != self._pass:
            self._pass = (self._base + batch) // self.period
            self._reset()

    def on_train_batch_end(self, batch, logs=None):
        self._done = self._base + batch + 1

    def _reset(self):
        for layer in recurrent_layers(self.model):
            if isinstance(layer, _CarriedStateMixin):
                layer.reset_carried_state()


def recurrent_layers(model: keras.Model) -> list:
    """The model's ``rnn_i`` layers, bottom first."""
    names = sorted((layer.name for layer in model.layers if layer.name.startswith("rnn_")
                    and not layer.name.endswith("_dropout")), key=lambda name: int(name.split("_")[1]))
    return [model.get_layer(name) for name in names]


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
    """A function (inputs, targets) int32 [B, T] → (log2 p(target) float32 [B, T], top-1 correct float32 [B, T]);
    a tf.function under TensorFlow."""

    def score(inputs, targets):
        targets = ops.cast(targets, "int32")
        logits = ops.cast(model(inputs, training=False), "float32")
        log_probs = ops.log_softmax(logits, axis=-1)
        picked = ops.take_along_axis(log_probs, ops.expand_dims(targets, -1), axis=-1)[..., 0]
        correct = ops.cast(ops.equal(ops.cast(ops.argmax(logits, axis=-1), "int32"), targets), "float32")
        return picked / _LN_2, correct

    return decoding.traced(score)  # one traced graph for every batch under TensorFlow, as before the port


def carried_token_log_probabilities(model: keras.Model):
    """A function (inputs, targets int32 [B, T], states) → (log2 p(target) float32 [B, T], top-1 correct float32
    [B, T], new states): the layers of the training model (inference mode) with each recurrent layer starting from
    ``states`` (None = zeros), so that consecutive windows of B streams continue each other. States: per layer, the
    list of its state tensors [B, units]. A tf.function under TensorFlow (one trace for a fixed B and T)."""
    embedding, output_layer = model.get_layer("embedding"), model.get_layer("logits")
    rnns = recurrent_layers(model)

    def score(inputs, targets, states):
        targets = ops.cast(targets, "int32")
        vectors = embedding(ops.cast(inputs, "int32"))
        new_states = []
        for rnn, layer_states in zip(rnns, states):
            outputs = rnn(vectors, initial_state=[ops.cast(state, rnn.compute_dtype) for state in layer_states],
                          training=False)
            vectors = outputs[0]
            new_states.append([ops.cast(state, "float32") for state in outputs[1:]])
        logits = ops.cast(output_layer(vectors), "float32")
        log_probs = ops.log_softmax(logits, axis=-1)
        picked = ops.take_along_axis(log_probs, ops.expand_dims(targets, -1), axis=-1)[..., 0]
        correct = ops.cast(ops.equal(ops.cast(ops.argmax(logits, axis=-1), "int32"), targets), "float32")
        return picked / _LN_2, correct, new_states

    traced = decoding.traced(score)

    def scored(inputs, targets, states=None):
        if states is None:
            rows = int(np.shape(inputs)[0])
            states = [[np.zeros((rows, size), np.float32) for size in rnn.state_size] for rnn in rnns]
        return traced(inputs, targets, states)

    return scored


def score_stream(model: keras.Model, stream: np.ndarray, config) -> tuple[float, float, int]:
    """Every target of the id ``stream`` scored once → (total bits, top-1 hits, targets). Zero-state models:
    overlapping windows (pipeline.evaluation_windows); carry_state models: EVALUATION_BATCH streams read as they
    were trained, the state carried from window to window (pipeline.carried_evaluation_windows)."""
    # Imported here: pipeline imports TensorFlow, and this module must not (it generates under JAX without it).
    from tasks.language_model.pipeline import carried_evaluation_windows, evaluation_windows

    length = config.sequence_length
    if config.carry_state:
        inputs, targets, scored = carried_evaluation_windows(stream, length, EVALUATION_BATCH, warmup=length)
        score, states = carried_token_log_probabilities(model), None
        parts = range(len(inputs))
    else:
        inputs, targets, scored = evaluation_windows(stream, length)
        score = token_log_probabilities(model)
        parts = [slice(start, start + EVALUATION_BATCH) for start in range(0, len(inputs), EVALUATION_BATCH)]
    bits, correct = 0.0, 0.0
    for part in parts:
        if config.carry_state:
            log2_p, hit, states = score(inputs[part], targets[part], states)
        else:
            log2_p, hit = score(inputs[part], targets[part])
        log2_p, hit = ops.convert_to_numpy(log2_p), ops.convert_to_numpy(hit)  # any backend
        bits -= float(np.sum(log2_p.astype(np.float64) * scored[part]))
        correct += float(np.sum(hit * scored[part]))
    tokens = int(scored.sum())
    if tokens != len(stream) - 1:
        raise RuntimeError(f"evaluation scored {tokens} tokens; the stream has {len(stream) - 1} targets")
    return bits, correct, tokens


class Generator:
    """Step-by-step view of a trained model for sampling (no variables of its own); keras.ops, any backend."""

    def __init__(self, model: keras.Model, top_k: int = 0):
        self.embedding = model.get_layer("embedding")
        self.rnns = recurrent_layers(model)
        self.output_layer = model.get_layer("logits")
        self.vocabulary_size = int(self.output_layer.units)
        self.top_k = int(top_k)

    def prime(self, ids, lengths):
        """Prompt ids int32 [B, P] (right-padded, lengths >= 1) → (logits of the next token [B, V], states)."""
        ids, lengths = ops.cast(ids, "int32"), ops.cast(lengths, "int32")
        mask = ops.expand_dims(ops.arange(ops.shape(ids)[1], dtype="int32"), 0) < ops.expand_dims(lengths, 1)
        vectors = self.embedding(ids)
        states = []
        for rnn in self.rnns:
            outputs = rnn(vectors, mask=mask, training=False)
            vectors, layer_states = outputs[0], list(outputs[1:])
            states.append(layer_states)
        return self._logits(states[-1][0]), states  # the last layer's h = its output after the last token

    def step(self, tokens, states):
        """tokens int32 [B] → (logits [B, V], new states)."""
        vectors = ops.take(self.embedding.embeddings, tokens, axis=0)  # a plain lookup: no mask for the cells
        new_states = []
        for rnn, layer_states in zip(self.rnns, states):
            vectors, updated = rnn.cell(vectors, layer_states, training=False)
            new_states.append(list(updated) if isinstance(updated, (list, tuple)) else [updated])
        return self._logits(vectors), new_states

    def _logits(self, vectors):
        logits = ops.cast(self.output_layer(vectors), "float32")
        never = ops.equal(ops.arange(self.vocabulary_size), PAD_ID)  # padding is never generated
        return ops.where(ops.expand_dims(never, 0), _NEVER, logits)

    def choose(self, logits, temperature, seed, step):
        """Greedy (temperature <= 0 or NaN) or seeded top-k sampling at ``temperature``: int32 [B]."""
        greedy = ops.cast(ops.argmax(logits, axis=-1), "int32")
        if self.top_k > 0:
            kth = ops.top_k(logits, k=min(self.top_k, self.vocabulary_size))[0][:, -1:]
            logits = ops.where(logits < kth, _NEVER, logits)
        scaled = logits / ops.maximum(temperature, 1e-3)
        sampled = _categorical(scaled, seed, step)
        return ops.where(temperature > 0, sampled, greedy)

    def generate(self, ids, lengths, num_tokens, temperature, seed):
        """Prompt ids [B, P] and lengths [B] → generated ids int32 [B, N], N = num_tokens clipped to
        [0, MAX_GENERATED_TOKENS]. Under TensorFlow num_tokens may be a graph tensor (the endpoint's argument);
        other backends need a concrete value (the buffer's shape is static there)."""
        if keras.backend.backend() == "tensorflow":
            count = ops.clip(ops.cast(num_tokens, "int32"), 0, MAX_GENERATED_TOKENS)
        else:
            count = int(np.clip(int(ops.convert_to_numpy(num_tokens)), 0, MAX_GENERATED_TOKENS))
        temperature = ops.cast(temperature, "float32")
        seed = ops.cast(seed, "int32")
        logits, states = self.prime(ids, lengths)
        generated = ops.zeros((ops.shape(logits)[0], count), dtype="int32")  # filled in place: fixed shapes

        def body(step, logits, states, generated):
            token = self.choose(logits, temperature, seed, step)
            logits, states = self.step(token, states)
            position = ops.one_hot(step, count, dtype="int32")  # [N]
            return step + 1, logits, states, generated + ops.expand_dims(token, 1) * ops.expand_dims(position, 0)

        *_, generated = ops.while_loop(lambda step, *_: step < count, body,
                                       (ops.convert_to_tensor(0, dtype="int32"), logits, states, generated))
        return generated


def _categorical(logits, seed, step):
    """One token per row drawn from softmax(logits) [B, V] with the seed pair (seed, step): int32 [B].

    keras.random.categorical cannot do it on TensorFlow: its seed must be a Python int or a SeedGenerator,
    not the (seed, step) tensor pair of a graph (the endpoint's seed, the loop's step). So each backend's
    own stateless draw: TensorFlow's keeps the exact samples of the model before the port. (Its CPU kernel
    shards the batch rows over the intra-op threads and the shards consume the random stream differently, so
    TensorFlow repeats a sample on machines with the same thread count; jax.random does not depend on it.)"""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        seeds = tf.stack([tf.cast(seed, tf.int32), tf.cast(step, tf.int32)])
        return tf.random.stateless_categorical(logits, 1, seed=seeds, dtype=tf.int32)[:, 0]
    if backend == "jax":
        import jax

        key = jax.random.fold_in(jax.random.key(seed), step)
        return jax.random.categorical(key, logits, axis=-1).astype("int32")
    raise NotImplementedError(f"tasks/language_model/model.py samples on the tensorflow and jax Keras backends; "
                              f"KERAS_BACKEND is {backend!r}")
