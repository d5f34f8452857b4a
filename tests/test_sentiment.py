"""The sentiment task: metrics (known answers), text pipeline, model layout, export round trip, CLI end to end."""

from __future__ import annotations

import json
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from common.config import ConfigError
from common.export import check_in_fresh_process
from common.metrics import classification
from common.task import TaskError
from tasks.sentiment import model as model_lib
from tasks.sentiment import pipeline
from tasks.sentiment.config import Config
from tasks.sentiment.task import SentimentTask, export_examples

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


# --- config --------------------------------------------------------------------------------------------


def test_presets_build_and_bad_values_are_refused():
    for preset in ("default", "tiny", "paper"):
        Config.from_preset(preset)
    paper = Config.from_preset("paper")
    assert (paper.max_tokens, paper.sequence_length, paper.epochs, paper.lstm_units) == (20_000, 200, 2, 64)
    with pytest.raises(ConfigError, match="validation_fraction"):
        Config.from_preset("tiny", ["validation_fraction=1.5"])
    with pytest.raises(ConfigError, match="Unknown config key 'vocab'"):
        Config.from_preset("tiny", ["vocab=10"])
    with pytest.raises(ConfigError, match="sequence_length"):
        Config(sequence_length=0)


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
        wrapper = model.get_layer(name)
        for lstm in (wrapper.forward_layer, wrapper.backward_layer):
            assert isinstance(lstm, keras.layers.LSTM)
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


# --- task: data, export ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_task_and_data(tmp_path_factory):
    keras.utils.set_random_seed(0)
    task = SentimentTask(Config.from_preset("tiny"))
    data = task.load_data(None, tmp_path_factory.mktemp("sentiment"))
    return task, data


def test_load_data_splits_and_facts(tiny_task_and_data):
    task, data = tiny_task_and_data
    splits = data.info["splits"]
    assert splits["train"]["reviews"] + splits["validation"]["reviews"] == 240
    assert splits["validation"]["reviews"] == 48 and splits["test"]["reviews"] == 80
    assert data.info["evaluated_on"] == "test" and data.info["source"] == "synthetic"
    assert 20 < data.info["vocabulary_size"] <= 2_000
    train_sources = {r.source for r in data.extras["train_reviews"]}
    assert not train_sources & {r.source for r in data.extras["validation_reviews"]}


def test_load_data_without_a_test_split_evaluates_on_validation(tmp_path):
    from test_sentiment_data import write_aclimdb

    reviews = {"train": {"pos": [f"good film number {i}" for i in range(10)],
                         "neg": [f"bad film number {i}" for i in range(10)]}}
    folder = write_aclimdb(tmp_path, reviews)
    task = SentimentTask(Config.from_preset("tiny", ["validation_fraction=0.3"]))
    data = task.load_data(folder, tmp_path / "work")
    assert data.info["evaluated_on"].startswith("validation")
    assert data.info["splits"]["test"] is None
    assert [r.source for r in data.test] == [r.source for r in data.extras["validation_reviews"]]
    assert len(data.test) == 6


def test_export_serves_raw_strings_like_the_in_process_model(tiny_task_and_data, tmp_path):
    task, data = tiny_task_and_data
    keras.utils.set_random_seed(1)
    model = task.build_model(data)  # untrained weights are enough to compare the two paths
    examples = task.export(model, data, tmp_path / "export")
    texts = [str(t) for t in examples["serve"][0]]
    assert "" in texts and max(len(t) for t in texts) == 100_000
    check = check_in_fresh_process(tmp_path / "export", examples)
    outputs = check["serve"]["outputs"]
    expected = task.model_probabilities(model, data, texts)
    np.testing.assert_allclose(outputs["probability"], expected, atol=1e-5)
    assert [label.decode() for label in outputs["label"]] == ["positive" if p >= 0.5 else "negative" for p in expected]
    # Invalid UTF-8 from a caller still gets an answer.
    loaded = tf.saved_model.load(str(tmp_path / "export"))  # keep a reference: its variables die with it
    served = loaded.serve(tf.constant([b"\xff\xfe good", b"fine"]))
    assert served["probability"].shape == (2,)


def test_export_examples_cover_the_awkward_inputs():
    examples = export_examples("A real review.")
    assert examples[0] == "A real review." and "" in examples
    assert any(re.fullmatch(r"(<br />)+", e) for e in examples)
    assert any(not e.isascii() for e in examples)
    assert any(len(e) == 100_000 for e in examples)


def test_predict_errors(tmp_path):
    task = SentimentTask(Config())
    with pytest.raises(TaskError, match="saved_model.pb"):
        task.predict(tmp_path, ["text"])


# --- end to end ----------------------------------------------------------------------------------------------


def test_cli_tiny_run_then_predict(tmp_path):
    workdir = tmp_path / "run"
    result = run_cli("sentiment", "--preset", "tiny", "--workdir", str(workdir))
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((workdir / "results.json").read_text())
    assert results["primary_metric"] == "accuracy"
    metrics = results["metrics"]
    for scores in (metrics, metrics["baseline"]):
        assert 0 <= scores["accuracy"] <= 1 and 0 <= scores["roc_auc"] <= 1
        assert sum(scores["confusion"].values()) == metrics["reviews"] == 80
    assert metrics["evaluated_on"] == "test"
    assert results["data"]["splits"]["train"]["reviews"] == 192
    assert results["training"]["baseline"]["features"] > 0
    assert results["export"]["endpoints"]["serve"] == [[5], [5]]
    predictions = (workdir / "test_predictions.tsv").read_text().splitlines()
    assert len(predictions) == 81 and predictions[0].startswith("source\tlabel")

    review = tmp_path / "review.txt"
    review.write_text("I loved the acting.<br />A gem.", encoding="utf-8")
    not_utf8 = tmp_path / "latin1.txt"
    not_utf8.write_bytes("très".encode("latin-1"))
    result = run_cli("sentiment", "predict", "--model", str(workdir / "export"), "The plot was not good.", str(review))
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert [line["input"] for line in lines] == ["The plot was not good.", str(review)]
    assert all(0 <= line["probability"] <= 1 and line["label"] in ("positive", "negative") for line in lines)
    result = run_cli("sentiment", "predict", "--model", str(workdir / "export"), str(not_utf8))
    assert result.returncode == 2 and "not valid UTF-8" in result.stderr
