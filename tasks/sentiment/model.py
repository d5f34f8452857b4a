"""The keras-io bidirectional LSTM sentiment model, and the bag-of-n-grams logistic regression baseline."""

from __future__ import annotations

import logging
from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf

from common import training
from common.pipelines import AUTOTUNE
from tasks.sentiment.config import Config

logger = logging.getLogger(__name__)

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


def fit_baseline(
    config: Config,
    vectorizer: keras.layers.TextVectorization,
    train: tuple[Sequence[str], np.ndarray],
    validation: tuple[Sequence[str], np.ndarray],
) -> tuple[keras.Model, dict[str, Any]]:
    """Fits the logistic regression on ``vectorizer``'s TF-IDF features of the (texts, labels) of the
    training split, early-stopped on the validation split; returns it and a summary of its training."""
    feature_size = int(vectorizer.vocabulary_size())
    baseline = build_baseline(feature_size, l2=config.baseline_l2, seed=config.seed)
    training.compile_model(
        baseline, config, loss="binary_crossentropy", metrics=["accuracy"],
        optimizer=keras.optimizers.Adam(learning_rate=config.baseline_learning_rate),
    )

    def features(split, shuffle):
        texts, labels = split
        dataset = tf.data.Dataset.from_tensor_slices((list(texts), labels))
        if shuffle:
            dataset = dataset.shuffle(len(texts), seed=config.seed, reshuffle_each_iteration=True)
        dataset = dataset.batch(config.batch_size * 4)  # a linear model: larger batches are as good and faster
        # [batch] strings → [batch, feature_size] TF-IDF.
        dataset = dataset.map(lambda batch, targets: (vectorizer(batch), targets), num_parallel_calls=AUTOTUNE)
        return dataset.prefetch(AUTOTUNE)

    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
    # Its epochs show like the LSTM's (a bar on a terminal, a line each in logs): on the full IMDB
    # training split the TF-IDF of 20k reviews takes a while. shuffle=False: the dataset shuffles itself.
    logger.info("fitting the baseline (TF-IDF %d-grams → logistic regression), at most %d epochs",
                config.baseline_ngrams, config.baseline_epochs)
    history = baseline.fit(features(train, True), validation_data=features(validation, False),
                           epochs=config.baseline_epochs, callbacks=[stop], verbose=training.verbosity(config),
                           shuffle=False)
    summary = {
        "features": feature_size,
        "epochs_run": len(history.history["loss"]),
        "best_val_loss": float(min(history.history["val_loss"])),
        "best_val_accuracy": float(max(history.history["val_accuracy"])),
    }
    logger.info("baseline (TF-IDF %d-grams → logistic regression): %s", config.baseline_ngrams, summary)
    return baseline, summary
