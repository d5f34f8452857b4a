"""The keras-io bidirectional LSTM sentiment model, and the bag-of-n-grams logistic regression baseline."""

from __future__ import annotations

import keras

from tasks.sentiment.config import Config

# The LSTM settings that let Keras run a masked LSTM with the cuDNN kernel on a GPU (with right padding);
# tests check the built layers against these.
CUDNN_LSTM_SETTINGS = dict(activation="tanh", recurrent_activation="sigmoid", recurrent_dropout=0.0, unroll=False,
                           use_bias=True)


def build_model(config: Config, vocabulary_size: int) -> keras.Model:
    """[batch, tokens] int ids (0 = padding) → [batch, 1] probability that the review is positive."""
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    # mask_zero: padding (id 0) is skipped by both LSTMs; [batch, tokens, embedding_dim].
    embedded = keras.layers.Embedding(
        input_dim=vocabulary_size, output_dim=config.embedding_dim, mask_zero=True, name="embedding"
    )(token_ids)
    # [batch, tokens, 2 * units]: every position sees the words before and after it.
    sequence = keras.layers.Bidirectional(
        keras.layers.LSTM(units=config.lstm_units, return_sequences=True, **CUDNN_LSTM_SETTINGS), name="bilstm_1"
    )(embedded)
    # [batch, 2 * units]: last state of each direction.
    summary = keras.layers.Bidirectional(
        keras.layers.LSTM(units=config.lstm_units, **CUDNN_LSTM_SETTINGS), name="bilstm_2"
    )(sequence)
    # float32 output even under a mixed-precision policy, so the loss is computed in float32.
    probability = keras.layers.Dense(units=1, activation="sigmoid", dtype="float32", name="probability")(summary)
    return keras.Model(inputs=token_ids, outputs=probability, name="bilstm_sentiment")


def build_baseline(feature_size: int, l2: float, seed: int) -> keras.Model:
    """[batch, feature_size] TF-IDF n-gram features → [batch, 1] probability: logistic regression.

    The seeded initializer keeps the baseline off the global random state, so fitting it before the
    LSTM is built leaves the LSTM's initial weights as they are without a baseline.
    """
    features = keras.Input(shape=(feature_size,), dtype="float32", name="ngram_tf_idf")
    probability = keras.layers.Dense(
        units=1, activation="sigmoid", dtype="float32", kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
        kernel_regularizer=keras.regularizers.L2(l2), name="logistic_regression",
    )(features)
    return keras.Model(inputs=features, outputs=probability, name="ngram_logistic_regression")
