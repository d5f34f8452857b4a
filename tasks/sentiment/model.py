"""The bidirectional LSTM sentiment models (keras-io's, and the pooled one of the ``best`` preset) and its
learning-rate schedule. (The bag-of-n-grams baseline is scikit-learn's: ``pipeline.fit_baseline``.)

Keras only (no TensorFlow), so the models build, train and load under every Keras backend."""

from __future__ import annotations

import math

import keras

from tasks.sentiment.config import Config

# The LSTM settings that let Keras run a masked LSTM with the cuDNN kernel on a GPU (with right padding);
# tests check the built layers against these.
CUDNN_LSTM_SETTINGS = dict(activation="tanh", recurrent_activation="sigmoid", recurrent_dropout=0.0, unroll=False,
                           use_bias=True)


def build_model(config: Config, vocabulary_size: int) -> keras.Model:
    """[batch, tokens] int ids (0 = padding) → [batch, 1] probability that the review is positive.

    ``config.architecture``: "stacked" is keras-io's (two BiLSTMs, the last states of the second);
    "pooled" is one BiLSTM whose states are summarised by their masked maximum and mean over time.
    """
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    # mask_zero: padding (id 0) is skipped by the LSTMs and the pooling; [batch, tokens, embedding_dim].
    embedded = keras.layers.Embedding(
        input_dim=vocabulary_size, output_dim=config.embedding_dim, mask_zero=True, name="embedding"
    )(token_ids)
    if config.spatial_dropout > 0:
        # Drops whole embedding channels (the same ones at every position): a word's meaning cannot rest on
        # one channel, and unlike per-element dropout it cannot be undone by the neighbouring positions.
        embedded = keras.layers.SpatialDropout1D(config.spatial_dropout, name="spatial_dropout")(embedded)
    # [batch, tokens, 2 * units]: every position sees the words before and after it.
    sequence = keras.layers.Bidirectional(
        keras.layers.LSTM(units=config.lstm_units, return_sequences=True, **CUDNN_LSTM_SETTINGS), name="bilstm_1"
    )(embedded)
    if config.architecture == "stacked":
        # [batch, 2 * units]: last state of each direction.
        summary = keras.layers.Bidirectional(
            keras.layers.LSTM(units=config.lstm_units, **CUDNN_LSTM_SETTINGS), name="bilstm_2"
        )(sequence)
    else:
        # [batch, 4 * units]: the strongest evidence anywhere in a long review (max) and its overall tone
        # (mean); a last state must carry both through hundreds of steps.
        summary = keras.layers.Concatenate(name="max_and_mean")([
            MaskedGlobalMaxPooling1D(name="max_over_time")(sequence),
            keras.layers.GlobalAveragePooling1D(name="mean_over_time")(sequence),
        ])
    if config.dropout > 0:
        summary = keras.layers.Dropout(config.dropout, name="dropout")(summary)
    # float32 output even under a mixed-precision policy, so the loss is computed in float32.
    probability = keras.layers.Dense(units=1, activation="sigmoid", dtype="float32", name="probability")(summary)
    return keras.Model(inputs=token_ids, outputs=probability, name=f"bilstm_sentiment_{config.architecture}")


@keras.saving.register_keras_serializable(package="sentiment")
class MaskedGlobalMaxPooling1D(keras.layers.Layer):
    """[batch, steps, features] (+ mask [batch, steps]) → [batch, features]: the maximum over unmasked steps.

    Keras' GlobalMaxPooling1D ignores the mask, and what an LSTM emits at padded steps differs between its
    cuDNN kernel (zeros) and the generic one (the last state, or zeros for the backward direction), so the
    padded steps are excluded here; the prediction then does not depend on padding or on the device.
    Every row keeps at least one unmasked step (``pipeline.Preprocessor.encode``).
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is not None:
            lowest = keras.ops.full_like(inputs, -65_000.0)  # below any LSTM output (tanh), finite in float16
            inputs = keras.ops.where(keras.ops.expand_dims(keras.ops.cast(mask, "bool"), -1), inputs, lowest)
        return keras.ops.max(inputs, axis=1)

    def compute_mask(self, inputs, mask=None):
        return None  # the time axis is gone

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


class CosineLearningRate(keras.callbacks.Callback):
    """Sets Adam's step size before every batch: ``base`` × ½(1 + cos(π · step / (epochs · steps per epoch))),
    from ``base`` at the first step to 0 at the last (Loshchilov & Hutter 2017, without restarts).

    Large steps early find a good region fast; small steps at the end settle in it, so the last epochs are
    the best ones instead of fluctuating. A callback rather than a Keras schedule because the number of
    steps per epoch (length-bucketed batches) is known only once fit has the dataset; the epoch index comes
    from fit, so a run resumed from WORKDIR/backup continues the same curve.
    """

    def __init__(self, base: float, epochs: int):
        super().__init__()
        self.base = float(base)
        self.epochs = int(epochs)
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        steps = self.params.get("steps") or 1
        progress = min((self._epoch * steps + batch) / (self.epochs * steps), 1.0)
        # Under JAX, fit carries the variables' values between steps; reading self.model syncs them back
        # (Keras' Callback.model), so the next step starts from the variables, this step size included.
        self.model.optimizer.learning_rate.assign(self.base * 0.5 * (1.0 + math.cos(math.pi * progress)))

