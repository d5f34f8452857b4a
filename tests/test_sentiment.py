"""The sentiment task: metrics (known answers), text pipeline, model layout, the fitted preprocessor's round
trip, export, and predict / results.json of the session's one tiny CLI run (``tiny_run("sentiment")``)."""

from __future__ import annotations

import json
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from common import training
from common.config import ConfigError
from common.errors import DataError, TaskError
from common.metrics import classification
from common.preprocessor import preprocessor_dir
from tasks.sentiment import model as model_lib
from tasks.sentiment import pipeline
from tasks.sentiment.config import Config
from tasks.sentiment.task import SentimentData, SentimentTask

from conftest import run_cli

# --- metrics (known answers) -----------------------------------------------------------------------------


def test_accuracy_and_confusion_counts_known_answer():
    labels = [1, 1, 1, 0, 0, 0, 0, 1]
    predicted = [1, 0, 1, 0, 1, 0, 0, 0]
    assert classification.accuracy(labels, predicted) == pytest.approx(5 / 8)
    assert classification.confusion_counts(labels, predicted) == {
        "true_positive": 2, "false_positive": 1, "true_negative": 3, "false_negative": 2,
    }


def test_roc_auc_known_answers():
    # The classic example: 3 of the 4 (positive, negative) pairs are ordered correctly.
    assert classification.roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    # A tie between a positive and a negative counts one half: (0.5 + 1 + 1 + 1) / 4.
    assert classification.roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9]) == pytest.approx(0.875)
    assert classification.roc_auc([0, 1], [0.9, 0.1]) == 0.0
    assert classification.roc_auc([1, 0, 1], [0.3, 0.3, 0.3]) == 0.5


def test_roc_auc_agrees_with_keras_auc():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, size=500)
    scores = np.clip(labels * 0.3 + rng.normal(0.35, 0.25, size=500), 0, 1)
    reference = keras.metrics.AUC(num_thresholds=20_001)
    reference.update_state(labels, scores)
    assert classification.roc_auc(labels, scores) == pytest.approx(float(reference.result()), abs=1e-3)


def test_binary_report_thresholds_at_one_half():
    report = classification.binary_report([1, 0, 1, 0], [0.5, 0.49, 0.9, 0.7])
    assert report["accuracy"] == 0.75
    assert report["confusion"] == {"true_positive": 2, "false_positive": 1, "true_negative": 1, "false_negative": 0}


def test_metric_input_errors():
    with pytest.raises(ValueError, match="both classes"):
        classification.roc_auc([1, 1], [0.2, 0.3])
    with pytest.raises(ValueError, match="3 labels but 2 scores"):
        classification.roc_auc([1, 0, 1], [0.2, 0.3])
    with pytest.raises(ValueError, match="must be 0 or 1"):
        classification.accuracy([0, 2], [0, 1])
    with pytest.raises(ValueError, match="NaN"):
        classification.roc_auc([0, 1], [0.1, float("nan")])
    with pytest.raises(ValueError, match="no examples"):
        classification.accuracy([], [])


def test_roc_curve_of_the_plot_encloses_the_roc_auc():
    from tasks.sentiment import plots

    false_positive_rate, true_positive_rate = plots.roc_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    np.testing.assert_allclose(false_positive_rate, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(true_positive_rate, [0, 0.5, 0.5, 1, 1])
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, size=300)
    scores = np.round(labels * 0.2 + rng.uniform(size=300), 1)  # rounded: many ties between the classes
    area = np.trapezoid(*plots.roc_curve(labels, scores)[::-1])
    assert area == pytest.approx(classification.roc_auc(labels, scores), abs=1e-12)
    with pytest.raises(ValueError, match="both classes"):
        plots.roc_curve([1, 1], [0.2, 0.3])


# --- config --------------------------------------------------------------------------------------------


def test_presets_build_and_bad_values_are_refused():
    for preset in ("default", "tiny", "paper", "best"):
        Config.from_preset(preset)
    paper = Config.from_preset("paper")
    assert (paper.max_tokens, paper.sequence_length, paper.epochs, paper.lstm_units) == (20_000, 200, 2, 64)
    with pytest.raises(ConfigError, match="validation_fraction"):
        Config.from_preset("tiny", ["validation_fraction=1.5"])
    with pytest.raises(ConfigError, match="Unknown config key 'vocab'"):
        Config.from_preset("tiny", ["vocab=10"])
    with pytest.raises(ConfigError, match="sequence_length"):
        Config(sequence_length=0)
    assert Config().max_train_reviews is None  # None = every training review
    assert Config.from_preset("tiny", ["max_train_reviews=3000"]).max_train_reviews == 3000
    with pytest.raises(ConfigError, match="max_train_reviews"):
        Config(max_train_reviews=0)
    assert Config().architecture == paper.architecture == "stacked" and paper.learning_rate_schedule == "constant"
    with pytest.raises(ConfigError, match="architecture='attention' is not allowed"):
        Config(architecture="attention")
    with pytest.raises(ConfigError, match="spatial_dropout"):
        Config(spatial_dropout=1.0)
    with pytest.raises(ConfigError, match="reduce_lr_patience"):
        Config(learning_rate_schedule="cosine", reduce_lr_patience=1)
    assert Config().validation_split == "movie" and Config().baseline_c_grid == (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
    assert Config.from_preset("tiny", ["baseline_c_grid=2,8"]).baseline_c_grid == (2.0, 8.0)
    with pytest.raises(ConfigError, match="baseline_c_grid"):
        Config(baseline_c_grid=(1.0, 0.0))
    with pytest.raises(ConfigError, match="validation_split='by_date' is not allowed"):
        Config(validation_split="by_date")
    with pytest.raises(ConfigError, match="held_out_fraction"):
        Config(held_out_fraction=0.0)


def _small_best(*overrides: str) -> Config:
    # The best preset's recipe at sizes that build and train in seconds.
    return Config.from_preset("best", ["max_tokens=50", "embedding_dim=8", "lstm_units=4", "sequence_length=30",
                                       "epochs=2", "batch_size=8", *overrides])


def test_best_preset_is_a_pooled_bilstm_that_stays_cudnn_eligible():
    best = Config.from_preset("best")
    assert best.architecture == "pooled" and best.learning_rate_schedule == "cosine"
    assert best.sequence_length > Config.from_preset("paper").sequence_length  # reviews are long
    model = model_lib.build_model(_small_best(), vocabulary_size=50)
    for name in ("spatial_dropout", "bilstm_1", "max_over_time", "mean_over_time", "dropout"):
        model.get_layer(name)
    report = training.recurrent_layers_report(model)
    assert [entry["kind"] for entry in report] == ["LSTM", "LSTM"], report  # one BiLSTM
    assert all(entry["cudnn_eligible"] for entry in report), report
    assert model.get_layer("probability").dtype_policy.name == "float32"


def test_pooled_model_ignores_padding_and_round_trips_through_a_keras_file(tmp_path):
    keras.utils.set_random_seed(0)
    model = model_lib.build_model(_small_best(), vocabulary_size=50)
    short = model.predict(np.array([[3, 4, 5]], dtype=np.int32), verbose=0)
    # Padded steps must not win the maximum or enter the mean (nor may a batch-mate's length matter).
    padded = model.predict(np.array([[3, 4, 5, 0, 0, 0, 0], [7, 8, 9, 10, 11, 12, 13]], dtype=np.int32), verbose=0)
    np.testing.assert_allclose(short[0], padded[0], atol=1e-6)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    ids = np.array([[1, 2, 3, 0]], dtype=np.int32)
    np.testing.assert_allclose(model.predict(ids, verbose=0), loaded.predict(ids, verbose=0), atol=1e-6)


def test_masked_max_pooling_takes_the_maximum_over_unmasked_steps_only():
    values = np.array([[[-3.0], [-2.0], [0.0]], [[-1.0], [5.0], [-4.0]]], np.float32)
    mask = np.array([[True, True, False], [True, True, True]])
    pooled = model_lib.MaskedGlobalMaxPooling1D()(values, mask=mask)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(pooled), [[-2.0], [5.0]])


def test_cosine_learning_rate_falls_from_the_base_to_zero_within_the_epochs():
    keras.utils.set_random_seed(0)
    config = _small_best("learning_rate=0.01")
    model = model_lib.build_model(config, vocabulary_size=50)
    training.compile_model(model, config, loss="binary_crossentropy", metrics=["accuracy"])
    seen = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))

    ids = np.random.default_rng(0).integers(1, 50, size=(32, 12)).astype(np.int32)
    labels = (ids[:, 0] > 25).astype(np.float32)
    history = model.fit(ids, labels, batch_size=8, epochs=2, verbose=0,
                        callbacks=[model_lib.CosineLearningRate(0.01, epochs=2), Record()])
    assert len(seen) == 8  # 2 epochs of 4 steps
    assert seen[0] == pytest.approx(0.01) and seen[4] == pytest.approx(0.005)  # half-way: half the step size
    assert all(a > b for a, b in zip(seen, seen[1:])) and 0 < seen[-1] < 0.001
    assert all(np.isfinite(history.history["loss"]))


# Run by the next test in a child process on Keras' JAX backend that cannot import TensorFlow: the pooled model
# of the best preset trained 4 steps by fit with the cosine schedule, and step by step (train_on_batch) with the
# same step sizes set by hand; prints how far apart their weights end.
_JAX_COSINE = """
import importlib.abc, json, math, sys


class NoTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "tensorflow":
            raise ImportError("TensorFlow is blocked in this test")


sys.meta_path.insert(0, NoTensorFlow())
import keras
import numpy as np

from common.optimization import compile_model
from tasks.sentiment import model as model_lib
from tasks.sentiment.config import Config

config = Config.from_preset("best", ["embedding_dim=8", "lstm_units=4", "spatial_dropout=0", "dropout=0"])
ids = np.random.default_rng(0).integers(1, 50, size=(32, 12)).astype(np.int32)
labels = (ids[:, 0] > 25).astype(np.float32)


def fresh():
    keras.utils.set_random_seed(0)
    return compile_model(model_lib.build_model(config, vocabulary_size=50), config, loss="binary_crossentropy")


scheduled, by_hand, constant = fresh(), fresh(), fresh()
scheduled.fit(ids, labels, batch_size=8, epochs=1, shuffle=False, verbose=0,
              callbacks=[model_lib.CosineLearningRate(0.01, epochs=1)])
for step in range(4):
    by_hand.optimizer.learning_rate.assign(0.01 * 0.5 * (1 + math.cos(math.pi * step / 4)))
    by_hand.train_on_batch(ids[8 * step : 8 * step + 8], labels[8 * step : 8 * step + 8])
constant.optimizer.learning_rate.assign(0.01)
constant.fit(ids, labels, batch_size=8, epochs=1, shuffle=False, verbose=0)


def distance(a, b):
    return max(float(np.abs(x - y).max()) for x, y in zip(a.get_weights(), b.get_weights()))


print(json.dumps({"backend": keras.backend.backend(), "tensorflow": "tensorflow" in sys.modules,
                  "by_hand": distance(scheduled, by_hand), "constant": distance(scheduled, constant)}))
"""


def test_cosine_learning_rate_reaches_every_step_under_jax_without_tensorflow():
    """JAX's fit carries the variables between steps: the schedule's step sizes must still reach each step
    (weights equal to train_on_batch's with the same sizes, unlike a constant step size), and model.py must
    import without TensorFlow."""
    import os
    import subprocess
    import sys

    from conftest import ROOT

    pytest.importorskip("jax", reason="the JAX tests need tests/requirements.txt (pip install -r it)")
    environment = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", _JAX_COSINE], cwd=ROOT, env=environment, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["backend"] == "jax" and not found["tensorflow"]
    assert found["by_hand"] < 1e-6 < 1e-3 < found["constant"], found


# --- text pipeline -----------------------------------------------------------------------------------------


def test_standardize_strips_html_breaks_and_punctuation_and_lowercases_unicode():
    texts = tf.constant(["It's GREAT!<br /><br />Really.", "ÉTÉ, Ça va?", b"bad \xff byte"])
    result = [t.decode("utf-8") for t in pipeline.standardize(texts).numpy()]
    assert result == ["its great  really", "été ça va", "bad \ufffd byte"]


def test_padded_ids_are_right_padded_cut_and_never_empty():
    ragged = tf.ragged.constant([[5, 6, 7, 8], [9], []], dtype=tf.int32)
    padded = pipeline.to_padded_ids(ragged, sequence_length=3).numpy()
    np.testing.assert_array_equal(padded, [[5, 6, 7], [9, 0, 0], [0, 0, 0]])
    empty = pipeline.to_padded_ids(tf.ragged.constant([[], []], dtype=tf.int32), sequence_length=3)
    assert empty.shape == (2, 1)


def test_training_dataset_buckets_cover_every_review_once_with_the_declared_batch_count():
    lengths = [1, 2, 3, 12, 13, 25, 26, 27, 30, 3]  # already cut at sequence_length by vectorize()
    ids = tf.ragged.constant([[index + 1] * n for index, n in enumerate(lengths)], dtype=tf.int32)
    labels = np.arange(len(lengths), dtype=np.float32) % 2
    dataset = pipeline.training_dataset(ids, labels, batch_size=2, shuffle=True, seed=0, bucket_width=10,
                                        sequence_length=30)
    batches = list(dataset)
    assert len(batches) == int(dataset.cardinality())
    seen = []
    for padded, _ in batches:
        padded = padded.numpy()
        for row in padded:
            tokens = row[row > 0]
            assert (row[: len(tokens)] > 0).all()  # padding only on the right
            seen.append((int(tokens[0]), len(tokens)))
        widths = (padded > 0).sum(axis=1)
        assert widths.max() - widths.min() < 10  # one length band per batch
    assert sorted(seen) == sorted((index + 1, n) for index, n in enumerate(lengths))


def test_prediction_dataset_order_is_undone():
    ids = tf.ragged.constant([[1, 2, 3], [4], [5, 6]], dtype=tf.int32)
    dataset, order = pipeline.prediction_dataset(ids, batch_size=2, sequence_length=10)
    rows = np.concatenate([batch[:, 0].numpy() for batch in dataset])
    restored = np.empty_like(rows)
    restored[order] = rows
    np.testing.assert_array_equal(restored, [1, 4, 5])


# --- model -------------------------------------------------------------------------------------------------


def test_lstm_layers_keep_the_cudnn_eligible_configuration():
    # Keras' own test of the arguments (cudnn_ok() additionally asks for a GPU, which CI lacks).
    from keras.src.backend.tensorflow.rnn import _do_lstm_arguments_support_cudnn

    model = model_lib.build_model(Config.from_preset("tiny"), vocabulary_size=50)
    assert model.get_layer("embedding").mask_zero
    for name in ("bilstm_1", "bilstm_2"):
        assert isinstance(model.get_layer(name), keras.layers.Bidirectional)
    # Every recurrent layer of the model, wrapped or not, so that a new one cannot escape the check.
    recurrent = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Bidirectional):
            recurrent += [layer.forward_layer, layer.backward_layer]
        elif isinstance(layer, keras.layers.RNN):
            recurrent.append(layer)
    assert len(recurrent) == 4
    for lstm in recurrent:
        assert isinstance(lstm, keras.layers.LSTM), f"{lstm.name} is a {type(lstm).__name__}, not an LSTM"
        assert lstm.recurrent_dropout == 0 and not lstm.unroll and lstm.use_bias
        assert lstm.activation is keras.activations.tanh
        assert lstm.recurrent_activation is keras.activations.sigmoid
        assert _do_lstm_arguments_support_cudnn(lstm.activation, lstm.recurrent_activation, lstm.unroll,
                                                lstm.use_bias)
    assert model.get_layer("probability").dtype_policy.name == "float32"


def test_padding_does_not_change_the_prediction():
    keras.utils.set_random_seed(0)
    model = model_lib.build_model(Config.from_preset("tiny"), vocabulary_size=50)
    short = model.predict(np.array([[3, 4, 5]], dtype=np.int32), verbose=0)
    padded = model.predict(np.array([[3, 4, 5, 0, 0, 0, 0]], dtype=np.int32), verbose=0)
    np.testing.assert_allclose(short, padded, atol=1e-6)


def test_model_round_trips_through_a_keras_file(tmp_path):
    model = model_lib.build_model(Config.from_preset("tiny"), vocabulary_size=50)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    ids = np.array([[1, 2, 3, 0]], dtype=np.int32)
    np.testing.assert_allclose(model.predict(ids, verbose=0), loaded.predict(ids, verbose=0), atol=1e-6)


# --- task: data, fitted preprocessor, export ---------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_fitted(tmp_path_factory):
    """(task, data, preprocessor) of the tiny preset: read + split, then the train step's fit."""
    keras.utils.set_random_seed(0)
    task = SentimentTask(Config.from_preset("tiny"))
    workdir = tmp_path_factory.mktemp("sentiment")
    data = task.load_data(None, workdir)
    return task, data, task.Preprocessor.fit(task, data, workdir)


def test_load_data_reads_and_splits_only(tiny_fitted):
    task, data, _ = tiny_fitted
    assert isinstance(data, SentimentData)
    # Validation holds whole synthetic movies (1-30 reviews each) until it has 20 % (48) of the 240 reviews.
    assert len(data.train) + len(data.validation) == 240 and 48 <= len(data.validation) < 48 + 30
    assert len(data.test) == 80
    assert not {r.source for r in data.train} & {r.source for r in data.validation}
    assert not {r.group for r in data.train} & {r.group for r in data.validation}
    assert data.info["validation_split"].startswith("by group") and data.info["held_out_split"] is None
    assert data.evaluated_on == data.info["evaluated_on"] == "test" and data.info["source"] == "synthetic"
    assert data.info["splits"]["train"] == {"reviews": len(data.train), "positive": sum(r.label for r in data.train),
                                            "groups": len({r.group for r in data.train})}
    assert "vocabulary_size" not in data.info  # fitted facts belong to the preprocessor


def test_load_data_without_a_test_split_holds_out_whole_movies_as_the_test(tmp_path):
    from test_sentiment_data import write_aclimdb

    # 5 movies of 4 reviews each (2 positive, 2 negative; see movie_url).
    reviews = {"train": {"pos": [f"good film number {i}" for i in range(10)],
                         "neg": [f"bad film number {i}" for i in range(10)]}}
    folder = write_aclimdb(tmp_path, reviews)
    task = SentimentTask(Config.from_preset("tiny", ["validation_fraction=0.3"]))
    data = task.load_data(folder, tmp_path / "work")
    assert data.evaluated_on.startswith("held-out part of the training split")
    assert len(data.test) == 4 and data.info["splits"]["test"]["reviews"] == 4  # one movie: 20 % of 20
    assert len(data.validation) == 8 and len(data.train) == 8  # two movies: >= 30 % of the other 16
    movies = [{r.group for r in split} for split in (data.train, data.validation, data.test)]
    assert not (movies[0] & movies[1] or movies[0] & movies[2] or movies[1] & movies[2])
    # The held-out movies are the same for every seed (a test split does not move with the seed).
    other = SentimentTask(Config.from_preset("tiny", ["validation_fraction=0.3", "seed=7"])).load_data(
        folder, tmp_path / "work7")
    assert sorted(r.source for r in other.test) == sorted(r.source for r in data.test)


def _reviews(groups: list[str | None]) -> list:
    from data.aclimdb import Review

    return [Review(text=f"review {i}", label=i % 2, source=f"r{i}", group=g) for i, g in enumerate(groups)]


def test_grouped_split_keeps_every_group_on_one_side_and_depends_only_on_the_seed():
    reviews = _reviews([f"movie {i % 37}" for i in range(1000)])
    rest, held_out = pipeline.grouped_split(reviews, 0.2, seed=3)
    assert sorted(r.source for r in rest + held_out) == sorted(r.source for r in reviews)
    assert not {r.group for r in rest} & {r.group for r in held_out}
    assert 200 <= len(held_out) < 200 + 28  # whole groups of 27-28 reviews until 20 % is reached
    again = pipeline.grouped_split(list(reversed(reviews)), 0.2, seed=3)[1]
    assert sorted(r.source for r in again) == sorted(r.source for r in held_out)
    assert sorted(r.source for r in pipeline.grouped_split(reviews, 0.2, seed=4)[1]) != sorted(
        r.source for r in held_out)


def test_split_reviews_falls_back_to_random_with_a_warning(caplog):
    import logging

    ungrouped = _reviews([None] * 50)
    with caplog.at_level(logging.WARNING):
        rest, held_out, how = pipeline.split_reviews(ungrouped, 0.2, 1, "movie")
    assert how == "random, stratified by label" and len(held_out) == 10
    assert "not grouped by movie" in caplog.text
    one_movie = _reviews(["movie"] * 50)  # cannot be split by movie at all
    assert pipeline.split_reviews(one_movie, 0.2, 1, "movie")[2] == "random, stratified by label"
    assert pipeline.split_reviews(_reviews(["a", "b"] * 25), 0.2, 1, "random")[2] == "random, stratified by label"
    assert pipeline.split_reviews(_reviews(["a", "b"] * 25), 0.2, 1, "movie")[2] == "by group (2 groups)"


def test_preprocessor_is_fitted_on_the_training_split(tiny_fitted):
    task, data, preprocessor = tiny_fitted
    vocabulary = preprocessor.vectorizer.get_vocabulary()
    assert vocabulary[:2] == ["", "[UNK]"] and 20 < preprocessor.vocabulary_size <= 2_000
    train_words = set(" ".join(pipeline.standardize(tf.constant([r.text for r in data.train])).numpy().astype(str))
                      .split())
    assert set(vocabulary[2:]) <= train_words
    summary = preprocessor.summary
    assert summary["vocabulary_size"] == preprocessor.vocabulary_size
    assert summary["baseline"]["features"] == len(preprocessor.baseline_vectorizer.vocabulary_) > 0
    assert summary["baseline"]["c"] in task.config.baseline_c_grid
    assert sorted(summary["baseline"]["val_accuracy_per_c"]) == ["1.0", "4.0"]
    assert summary["train_tokens_per_review"]["max"] <= 60


def test_preprocessor_round_trips_with_identical_outputs(tiny_fitted, tmp_path):
    task, data, preprocessor = tiny_fitted
    preprocessor.save(tmp_path / "preprocessor")
    loaded = task.Preprocessor.load(tmp_path / "preprocessor")
    texts = [r.text for r in data.test] + pipeline.awkward_inputs("Not good at all.")
    before, after = preprocessor.encode(tf.constant(texts)), loaded.encode(tf.constant(texts))
    assert before.to_list() == after.to_list() and after.dtype == tf.int32
    assert max(len(row) for row in after.to_list()) == preprocessor.sequence_length == loaded.sequence_length
    baseline = preprocessor.baseline_probabilities(texts)
    np.testing.assert_array_equal(baseline, loaded.baseline_probabilities(texts))
    assert baseline.shape == (len(texts),) and ((0 < baseline) & (baseline < 1)).all()
    assert loaded.summary == preprocessor.summary
    assert loaded.vectorizer.get_vocabulary() == preprocessor.vectorizer.get_vocabulary()


def test_a_damaged_vocabulary_is_a_clear_error(tiny_fitted, tmp_path):
    task, _, preprocessor = tiny_fitted
    preprocessor.save(tmp_path / "preprocessor")
    (tmp_path / "preprocessor" / pipeline.VOCABULARY_FILE).write_text('{"not": "a list"}')
    with pytest.raises(TaskError, match="is not a vocabulary"):
        task.Preprocessor.load(tmp_path / "preprocessor")


def test_a_missing_or_damaged_baseline_is_a_clear_error(tiny_fitted, tmp_path):
    task, _, preprocessor = tiny_fitted
    preprocessor.save(tmp_path / "preprocessor")
    baseline = tmp_path / "preprocessor" / pipeline.BASELINE_FILE
    baseline.write_bytes(b"not a pickle")
    with pytest.raises(TaskError, match="baseline.joblib' cannot be read .*retrain in a new --workdir"):
        task.Preprocessor.load(tmp_path / "preprocessor")
    baseline.unlink()  # e.g. a WORKDIR of the Keras baseline before it
    with pytest.raises(TaskError, match="baseline.joblib' is missing"):
        task.Preprocessor.load(tmp_path / "preprocessor")


def test_datasets_carry_the_encoded_training_and_validation_splits(tiny_fitted):
    task, data, preprocessor = tiny_fitted
    train, validation = task.datasets(data, preprocessor)
    rows = [row[row > 0].tolist() for ids, _ in validation for row in ids.numpy()]
    expected = pipeline.encode_all(preprocessor, [r.text for r in data.validation]).to_list()
    assert sorted(rows) == sorted(expected)
    assert sum(int(labels.shape[0]) for _, labels in train) == len(data.train)


# Reviews with no word left after standardisation, and reviews of only unknown words (DESIGN rule 15: none may
# reach the masked LSTM as an all-padding row, which cuDNN rejects on a GPU).
_NO_WORDS = ["", "   \n\t", "?!... --- ;-) !!!", "<br /><br /><br />", "<br/><BR>"]
_UNKNOWN_WORDS = ["zzqxv qqxzw", "🎬🎬 🍿"]


def _awkward_reviews(data) -> list:
    from data.aclimdb import Review

    texts = _NO_WORDS + _UNKNOWN_WORDS
    return [Review(text=t, label=i % 2, source=f"awkward_{i}") for i, t in enumerate(texts)]


def test_encode_gives_every_review_at_least_one_token(tiny_fitted):
    _, data, preprocessor = tiny_fitted
    assert preprocessor.vectorizer(tf.constant(_NO_WORDS)).row_lengths().numpy().max() == 0  # what encode repairs
    ids = preprocessor.encode(tf.constant(_NO_WORDS + _UNKNOWN_WORDS)).to_list()
    assert ids[: len(_NO_WORDS)] == [[pipeline.OOV_ID]] * len(_NO_WORDS)
    assert ids[len(_NO_WORDS):] == [[pipeline.OOV_ID] * 2, [pipeline.OOV_ID] * 2]  # two words each
    # Real reviews are untouched: their ids are the vectorizer's, cut at sequence_length.
    texts = tf.constant([r.text for r in data.test])
    assert preprocessor.encode(texts).to_list() == (
        preprocessor.vectorizer(texts)[:, : preprocessor.sequence_length].to_list())
    assert preprocessor.encode(tf.constant([], tf.string)).nrows() == 0


@pytest.mark.parametrize("bucket_width", [50, 0])
def test_no_all_padding_row_reaches_the_lstm_through_tf_data(tiny_fitted, bucket_width):
    _, data, preprocessor = tiny_fitted
    task = SentimentTask(Config.from_preset("tiny", [f"length_bucket_width={bucket_width}"]))
    awkward = _awkward_reviews(data)
    mixed = SentimentData(train=awkward + data.train[:20], validation=awkward, test=awkward, evaluated_on="test")
    train, validation = task.datasets(mixed, preprocessor)
    texts = [r.text for r in awkward]
    prediction, _ = pipeline.prediction_dataset(pipeline.encode_all(preprocessor, texts), 4,
                                                preprocessor.sequence_length)
    rows = 0
    for ids in [ids for ids, _ in train] + [ids for ids, _ in validation] + list(prediction):
        ids = ids.numpy()
        assert ids.shape[1] >= 1 and (ids != pipeline.PADDING_ID).any(axis=1).all(), ids
        rows += ids.shape[0]
    assert rows == len(mixed.train) + 2 * len(awkward)


def test_no_all_padding_row_reaches_the_lstm_through_the_serving_function(tiny_fitted):
    task, _, preprocessor = tiny_fitted

    def largest_id(ids, training=False):
        # Stands in for the model: its "probability" is the largest id of each row, 0 only for all padding.
        return tf.cast(tf.reduce_max(ids, axis=1, keepdims=True), tf.float32)

    serve, signature = task.endpoints(largest_id, preprocessor)["serve"]
    served = tf.function(serve, input_signature=signature)  # traced as the export traces it
    texts = _NO_WORDS + _UNKNOWN_WORDS + pipeline.awkward_inputs("Not good at all.")
    assert (served(tf.constant(texts))["probability"].numpy() >= pipeline.OOV_ID).all()
    assert served(tf.constant(_NO_WORDS))["probability"].numpy().tolist() == [pipeline.OOV_ID] * len(_NO_WORDS)


def test_export_examples_cover_the_awkward_inputs(tiny_fitted):
    task, data, _ = tiny_fitted
    (examples,) = task.export_examples(data)["serve"]
    assert examples[0] == data.test[0].text and "" in list(examples)
    assert any(re.fullmatch(r"(<br />)+", e) for e in examples)
    assert any(not e.isascii() for e in examples)
    assert any(len(e) == 100_000 for e in examples)


def test_predictions_in_chunks_equal_one_pass_and_show_progress(tiny_fitted, caplog):
    import logging

    task, data, preprocessor = tiny_fitted
    keras.utils.set_random_seed(0)
    model = model_lib.build_model(task.config, vocabulary_size=preprocessor.vocabulary_size)
    texts = [r.text for r in data.test[:40]] + _NO_WORDS
    with caplog.at_level(logging.INFO, logger="progress"):
        chunked = pipeline.model_probabilities(model, preprocessor, texts, batch_size=2)  # chunks of 32 reviews
    messages = [r.getMessage() for r in caplog.records]
    assert "bidirectional LSTM on the reviews: 2 chunks of 32 reviews ..." in messages
    dataset, order = pipeline.prediction_dataset(pipeline.encode_all(preprocessor, texts), 2,
                                                 preprocessor.sequence_length)
    one_pass = np.empty(len(texts), np.float32)
    one_pass[order] = model.predict(dataset, verbose=0).reshape(-1)
    np.testing.assert_array_equal(chunked, one_pass)


def test_best_preset_trains_through_the_task_on_tiny_synthetic_reviews(tiny_fitted, tmp_path):
    _, data, preprocessor = tiny_fitted
    task = SentimentTask(_small_best("epochs=1", "tensorboard=False", "verbose=0"))
    keras.utils.set_random_seed(0)
    model = task.build_model(data, preprocessor)
    record = task.fit(model, data, preprocessor, tmp_path)
    assert record["epochs_run_this_process"] == 1 and np.isfinite(record["history"]["loss"]).all()
    assert record["best_epoch"] == 1 and "preprocessor" in record
    final_step_size = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    assert final_step_size < 0.01 * task.config.learning_rate  # the cosine schedule ran to its end


def test_baseline_is_tfidf_bigrams_and_logistic_regression_with_c_chosen_on_validation():
    config = Config.from_preset("tiny", ["baseline_c_grid=0.001,1,100", "baseline_min_df=1"])
    # "not good" is negative: only the bigram tells it from "good", and the validation split says so.
    train = ["good film", "not good film", "good acting", "not good acting", "great plot", "not great plot"] * 3
    labels = np.array([1, 0, 1, 0, 1, 0] * 3, np.float32)
    validation = ["good music", "not good music", "great music", "not great music"]
    vectorizer, classifier, summary = pipeline.fit_baseline(config, (train, labels),
                                                            (validation, np.array([1, 0, 1, 0], np.float32)))
    assert "not good" in vectorizer.vocabulary_ and vectorizer.sublinear_tf and vectorizer.ngram_range == (1, 2)
    accuracies = summary["val_accuracy_per_c"]
    assert sorted(accuracies) == ["0.001", "1.0", "100.0"] and summary["best_val_accuracy"] == 1.0
    # The chosen C is the first of the grid with the best validation accuracy.
    assert summary["c"] == classifier.C == next(c for c in (0.001, 1.0, 100.0) if accuracies[str(c)] == 1.0)
    probabilities = classifier.predict_proba(vectorizer.transform(["Not good.<br />Not great."]))[:, 1]
    assert probabilities[0] < 0.5
    with pytest.raises(TaskError, match="baseline_min_df=5"):
        pipeline.fit_baseline(Config.from_preset("tiny", ["baseline_min_df=5"]), (train[:4], labels[:4]),
                              (validation, labels[:4]))


def test_write_samples_writes_test_reviews_of_both_labels(tiny_fitted, tmp_path):
    task, data, _ = tiny_fitted
    paths = task.write_samples(data, tmp_path / "samples")
    assert 2 <= len(paths) <= 3 and {"positive", "negative"} <= {p.rsplit("_", 1)[1][:-4] for p in paths}
    texts = {r.text for r in data.test}
    assert all(open(p, encoding="utf-8").read().rstrip("\n") in texts for p in paths)
    assert task.predict_arguments(paths)[0].tolist() == [open(p, encoding="utf-8").read() for p in paths]


def test_predict_arguments_and_results(tmp_path):
    task = SentimentTask(Config())
    review = tmp_path / "review.txt"
    review.write_text("I loved the acting.<br />A gem.", encoding="utf-8")
    long_text = "x" * 5000  # too long to be a path: taken as text without asking the file system
    (arguments,) = task.predict_arguments(["The plot was not good.", str(review), long_text])
    assert arguments.tolist() == ["The plot was not good.", "I loved the acting.<br />A gem.", long_text]
    with pytest.raises(TaskError, match="input 2 of 2 is empty"):  # a label for no text would be a wrong answer
        task.predict_arguments(["Fine.", " "])
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("très".encode("latin-1"))
    with pytest.raises(DataError, match="latin1.txt: not valid UTF-8"):
        task.predict_arguments([str(latin1)])
    # A mistyped path is an error, not a review about "reviw.txt"; --text / --file say which is meant.
    for typo in ("reviw.txt", str(tmp_path / "missing"), "reviews/great"):
        with pytest.raises(DataError, match="no such file.*pass --text"):
            task.predict_arguments([typo])
    task.input_kind = "text"
    assert task.predict_arguments(["reviw.txt", str(review)])[0].tolist() == ["reviw.txt", str(review)]
    task.input_kind = "file"
    with pytest.raises(DataError, match="'A fine film.': no such file"):
        task.predict_arguments(["A fine film."])
    task.input_kind = None
    outputs = {"probability": np.array([0.25, 0.75], np.float32), "label": np.array([b"negative", b"positive"])}
    results = task.predict_results(["short", "y" * 200], outputs)
    assert results[0] == {"input": "short", "probability": 0.25, "label": "negative"}
    assert len(results[1]["input"]) == 80 and results[1]["label"] == "positive"
    json.dumps(results, allow_nan=False)


# --- the session's tiny CLI run ---------------------------------------------------------------------------------


def test_tiny_run_results(tiny_run):
    workdir = tiny_run("sentiment")
    results = json.loads((workdir / "results.json").read_text())
    metrics = results["metrics"]
    assert metrics["primary"] == "accuracy" and sorted(metrics["baselines"]) == ["tfidf_logistic"]
    for name, scores in (("model", metrics["model"]), ("tfidf_logistic", metrics["baselines"]["tfidf_logistic"])):
        assert sorted(scores) == ["accuracy", "roc_auc"]
        assert 0 <= scores["accuracy"] <= 1 and 0 <= scores["roc_auc"] <= 1
        assert sum(metrics["confusion"][name].values()) == metrics["reviews"] == 80
    assert metrics["evaluated_on"] == "test"
    assert results["data"]["splits"]["train"]["reviews"] + results["data"]["splits"]["validation"]["reviews"] == 240
    assert "best_val_accuracy" in results["training"]  # the checkpoint follows validation accuracy
    assert results["training"]["preprocessor"]["baseline"]["features"] > 0
    folder = workdir / "checkpoints" / "preprocessor"
    for name in (pipeline.VOCABULARY_FILE, pipeline.BASELINE_FILE):
        assert (folder / name).is_file(), name
    predictions = (workdir / "test_predictions.tsv").read_text().splitlines()
    assert len(predictions) == 81 and predictions[0].startswith("source\tlabel")
    for picture in ("roc.png", "confusion.png"):  # evaluate draws model and baseline on the evaluated split
        content = (workdir / picture).read_bytes()
        assert content[:8] == b"\x89PNG\r\n\x1a\n" and 10_000 < len(content) < 2_000_000, picture


def test_export_serves_raw_strings_like_the_evaluated_model(tiny_run):
    workdir = tiny_run("sentiment")
    task = SentimentTask(Config.from_preset("tiny"))
    data = task.load_data(None, workdir)  # the synthetic reviews the run wrote (not rewritten)
    preprocessor = task.Preprocessor.load(preprocessor_dir(workdir))
    model = training.load_best(workdir)
    texts = [r.text for r in data.test] + pipeline.awkward_inputs("Not good at all.")
    expected = pipeline.model_probabilities(model, preprocessor, texts, batch_size=16)
    evaluated = [float(line.split("\t")[2]) for line in (workdir / "test_predictions.tsv").read_text().splitlines()[1:]]
    np.testing.assert_allclose(expected[: len(data.test)], evaluated, atol=2e-6)
    loaded = tf.saved_model.load(str(workdir / "export"))  # keep a reference: its variables die with it
    served = loaded.serve(tf.constant(texts))
    np.testing.assert_allclose(served["probability"].numpy(), expected, atol=1e-5)
    assert [label.decode() for label in served["label"].numpy()] == [
        "positive" if p >= 0.5 else "negative" for p in expected]
    # Invalid UTF-8 from a caller still gets an answer.
    assert loaded.serve(tf.constant([b"\xff\xfe good", b"fine"]))["probability"].shape == (2,)


def test_exported_serve_gives_reviews_without_words_the_out_of_vocabulary_token(tiny_run):
    workdir = tiny_run("sentiment")
    model = training.load_best(workdir)
    # What the model says about a review of one unknown word: ids [[OOV_ID]], nothing masked.
    one_unknown_word = float(model.predict(np.array([[pipeline.OOV_ID]], np.int32), verbose=0)[0, 0])
    all_padding = float(model.predict(np.array([[pipeline.PADDING_ID]], np.int32), verbose=0)[0, 0])
    assert abs(one_unknown_word - all_padding) > 1e-6  # so the check below tells the two apart
    loaded = tf.saved_model.load(str(workdir / "export"))
    served = loaded.serve(tf.constant(_NO_WORDS + ["zzqxv"]))["probability"].numpy()
    np.testing.assert_allclose(served, one_unknown_word, atol=1e-5)


def test_predict_on_awkward_inputs(tiny_run, tmp_path):
    model = tiny_run("sentiment") / "export"
    review = tmp_path / "review.txt"
    review.write_text("I loved the acting.<br />A gem.", encoding="utf-8")
    # An empty review is refused (tests/test_bad_input.py); markup alone is text the model reads as empty.
    inputs = ["The plot was not good.", str(review), "<br /><br />", "Très émouvant 🎬", "good " * 20_000]
    result = run_cli("sentiment", "predict", "--json", "--model", str(model), *inputs)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert [line["input"] for line in lines[:4]] == inputs[:4] and len(lines) == len(inputs)
    assert all(0 <= line["probability"] <= 1 and line["label"] in ("positive", "negative") for line in lines)


def test_predict_names_a_file_that_is_not_utf8(tiny_run, tmp_path):
    not_utf8 = tmp_path / "latin1.txt"
    not_utf8.write_bytes("très".encode("latin-1"))
    result = run_cli("sentiment", "predict", "--model", str(tiny_run("sentiment") / "export"), str(not_utf8))
    assert result.returncode == 2 and "not valid UTF-8" in result.stderr and "Traceback" not in result.stderr
