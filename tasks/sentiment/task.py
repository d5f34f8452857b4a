"""IMDB sentiment: raw review text → bidirectional LSTM → positive / negative, against a bag-of-n-grams baseline.

    python run.py sentiment                       # default preset, synthetic aclImdb-layout reviews
    python run.py sentiment --preset paper --data-dir aclImdb_v1.tar.gz
    python run.py sentiment --preset paper --download --data-dir ~/tensorflow_datasets   # tfds imdb_reviews
    python run.py sentiment predict --model runs/sentiment/export "A wonderful film." review.txt

Measured results: tasks/sentiment/README.md, from run.py report over results.json files.

Model (keras-io "Bidirectional LSTM on IMDB"): TextVectorization fitted on the training split
(lower-case, ``<br />`` and punctuation removed) → Embedding(mask_zero) → BiLSTM(64, sequences) →
BiLSTM(64) → Dense(1, sigmoid); the checkpoint follows validation accuracy. ``--preset best`` (the
strongest recipe found for the real reviews, see config.py): one BiLSTM over 500 tokens, masked max+mean
pooling over its states, spatial dropout and dropout, a cosine learning-rate schedule. Baseline
``tfidf_logistic``, fitted in the train step beside the vocabulary (``pipeline.Preprocessor``), the field's standard in
scikit-learn: TF-IDF of unigrams and bigrams (sublinear tf) → logistic regression, C chosen on validation;
scored in Python, not exported. Validation holds whole movies (``validation_split``; aclImdb's urls files
say which movie a review is about). Metrics on the test split (or, when the data has no test split, on
whole movies held out of train first, and ``evaluated_on`` says so): accuracy (primary) and ROC AUC for
both, confusion counts as an extra; WORKDIR/roc.png and WORKDIR/confusion.png draw them. The exported
``serve`` endpoint takes a batch of raw strings and returns ``probability`` (float32, positive class)
and ``label`` ("positive"/"negative"); ``predict`` takes review texts or paths of UTF-8 .txt files.
Every review reaches the LSTM with at least one token (see ``Preprocessor.encode``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import tensorflow as tf

from common import export, training
from common.io import atomic_write_text
from common.metrics.classification import binary_report
from common.report import metrics as metrics_record
from common.task import Task, TaskData
from data import DataError
from data import aclimdb
from data.synthetic import reviews as synthetic_reviews
from tasks.sentiment import model as model_lib
from tasks.sentiment import pipeline
from tasks.sentiment import plots
from tasks.sentiment.config import Config

logger = logging.getLogger(__name__)

LABEL_NAMES = ("negative", "positive")  # index = label id
BASELINE = "tfidf_logistic"  # the baseline's name in results.json
_PREDICTION_BATCH = 128  # reviews per inference batch (sorted by length, so little padding)
_SAMPLES = 3  # test reviews write_samples puts in WORKDIR/samples
_HELD_OUT_SEED = 2011  # draws the held-out movies of data without a test split (the same for every run)


@dataclasses.dataclass
class SentimentData(TaskData):
    train: list[aclimdb.Review]  # the training split minus the validation reviews
    validation: list[aclimdb.Review]  # carved from train: whole movies (validation_split="movie") or at random
    test: list[aclimdb.Review]  # the test split, or whole movies held out of train when the data has none
    evaluated_on: str  # "test", or says that ``test`` is a held-out part of the training split


class SentimentTask(Task):
    name = "sentiment"
    description = "IMDB review sentiment: raw text → bidirectional LSTM, vs a TF-IDF n-gram baseline"
    Config = Config
    Preprocessor = pipeline.Preprocessor
    primary_metric = "accuracy"
    text_or_file_inputs = True  # predict takes --text / --file
    higher_is_better = True
    # While the LSTM learns negation its validation loss can rise for an epoch (confident mistakes)
    # although its accuracy improves: select the checkpoint (and stop early) on the metric reported.
    monitor = "val_accuracy"
    monitor_mode = "max"
    predict_usage = "REVIEW_TEXT_OR_TXT_FILE [...]"
    extra_packages = ("scipy", "scikit-learn", "tensorflow-datasets")
    can_download = True  # --download fetches tfds imdb_reviews (the only network access in the suite)

    # --- data -----------------------------------------------------------------------------------
    def _synthetic_spec(self) -> synthetic_reviews.ReviewSpec:
        config = self.config
        return synthetic_reviews.ReviewSpec(
            train_reviews=config.synthetic_train_reviews, test_reviews=config.synthetic_test_reviews,
            min_words=config.synthetic_min_words, max_words=config.synthetic_max_words,
            label_noise=config.synthetic_label_noise, seed=config.seed,
        )

    def load_data(self, data_dir: Path | None, workdir: Path) -> SentimentData:
        config = self.config
        if self.download:
            target = aclimdb.download_tfds_imdb(data_dir if data_dir is not None else Path(workdir) / "downloads")
            corpus, source = aclimdb.read_tfds(target), "tfds imdb_reviews (downloaded)"
        elif data_dir is None:
            folder = synthetic_reviews.write_aclimdb(Path(workdir) / "data", self._synthetic_spec())
            corpus, source = aclimdb.read_aclimdb_folder(folder), "synthetic"
        else:
            corpus, source = aclimdb.read_reviews(data_dir), "files"
        for note in corpus.notes:
            logger.warning("%s", note)
        reviews = corpus.splits["train"]
        if config.max_train_reviews is not None and config.max_train_reviews < len(reviews):
            fraction = config.max_train_reviews / len(reviews)
            _, reviews = pipeline.stratified_split(reviews, fraction, seed=config.seed + 1)
        if "test" in corpus.splits:
            test, evaluated_on, test_split = corpus.splits["test"], "test", None
        else:
            # No test half (e.g. the training half alone): whole movies are held out as its stand-in, as
            # aclImdb's test half shares no movie with its training half. A fixed seed, so that every run
            # (every seed, every preset) is scored on the same reviews, as on a real test split.
            reviews, test, test_split = pipeline.split_reviews(reviews, config.held_out_fraction, _HELD_OUT_SEED,
                                                               "movie")
            evaluated_on = "held-out part of the training split (the data has no test split)"
            logger.warning("No test split in %s: metrics are computed on %d held-out training reviews (%s)",
                           corpus.source, len(test), test_split)
        train, validation, validation_split = pipeline.split_reviews(reviews, config.validation_fraction,
                                                                     config.seed, config.validation_split)
        if len(train) < 2 or len(validation) < 2 or len(test) < 2:
            raise DataError(f"{corpus.source}: {len(corpus.splits['train'])} training reviews leave {len(train)} for "
                            f"training, {len(validation)} for validation and {len(test)} for the test; expected at "
                            f"least 2 each")
        info = {
            "source": source, "path": corpus.source, "format": corpus.format, "notes": corpus.notes,
            "splits": {"train": pipeline.split_facts(train), "validation": pipeline.split_facts(validation),
                       "test": pipeline.split_facts(test)},
            "validation_split": validation_split, "held_out_split": test_split,
            "evaluated_on": evaluated_on,
        }
        return SentimentData(train=train, validation=validation, test=test, evaluated_on=evaluated_on, info=info)

    def datasets(self, data: SentimentData, preprocessor: pipeline.Preprocessor) -> tuple[tf.data.Dataset, ...]:
        config = self.config

        def batches(reviews, shuffle):
            ids = pipeline.encode_all(preprocessor, [r.text for r in reviews])
            return pipeline.training_dataset(
                ids, pipeline.labels_of(reviews), config.batch_size, shuffle=shuffle, seed=config.seed,
                bucket_width=config.length_bucket_width, sequence_length=preprocessor.sequence_length,
            )

        return batches(data.train, True), batches(data.validation, False)

    # --- model ----------------------------------------------------------------------------------
    def build_model(self, data: SentimentData, preprocessor: pipeline.Preprocessor):
        model = model_lib.build_model(self.config, vocabulary_size=preprocessor.vocabulary_size)
        return training.compile_model(model, self.config, loss="binary_crossentropy", metrics=["accuracy"])

    def fit(self, model, data: SentimentData, preprocessor: pipeline.Preprocessor, workdir: Path) -> dict[str, Any]:
        config = self.config
        train, validation = self.datasets(data, preprocessor)
        schedule = []
        if config.learning_rate_schedule == "cosine":
            # The compiled step size (scaled per replica when asked): TensorFlow's strategy is the model's;
            # the other backends have no distribute_strategy and train on one device.
            strategy = getattr(model, "distribute_strategy", None)
            with strategy.scope() if strategy is not None else contextlib.nullcontext():
                base = training.learning_rate(config)
            schedule.append(model_lib.CosineLearningRate(base, config.epochs))
        record = training.fit(model, train, validation, config, workdir, monitor=self.monitor,
                              mode=self.monitor_mode, extra_callbacks=schedule)
        # The facts of the fitted preprocessor (vocabulary, review lengths, the baseline's training) sit beside
        # the model's training record in results.json.
        return {**record, "preprocessor": preprocessor.summary}

    # --- evaluation -----------------------------------------------------------------------------
    def evaluate(self, model, data: SentimentData, preprocessor: pipeline.Preprocessor, workdir: Path) -> dict:
        reviews = data.test
        labels = pipeline.labels_of(reviews).astype(np.int64)
        texts = [r.text for r in reviews]
        probabilities = {
            "model": pipeline.model_probabilities(model, preprocessor, texts, _PREDICTION_BATCH),
            BASELINE: preprocessor.baseline_probabilities(texts),
        }
        reports = {name: binary_report(labels, p) for name, p in probabilities.items()}
        scores = {name: {"accuracy": r["accuracy"], "roc_auc": r["roc_auc"]} for name, r in reports.items()}
        model_p, baseline_p = probabilities["model"], probabilities[BASELINE]
        wrong = np.flatnonzero((model_p >= 0.5).astype(np.int64) != labels)
        for index in wrong[: self.config.logged_examples]:
            logger.info("misclassified %s | reference %s | model P(positive)=%.3f, baseline %.3f | %s",
                        reviews[index].source, LABEL_NAMES[labels[index]], model_p[index], baseline_p[index],
                        pipeline.shorten(texts[index], 300))
        lines = ["source\tlabel\tmodel_probability\tbaseline_probability"]
        lines += [f"{r.source}\t{r.label}\t{p:.6f}\t{b:.6f}" for r, p, b in zip(reviews, model_p, baseline_p)]
        atomic_write_text(Path(workdir) / "test_predictions.tsv", "\n".join(lines) + "\n")
        split = "test" if data.evaluated_on == "test" else "held-out"
        plots.plot_roc(Path(workdir) / "roc.png", labels, probabilities,
                       {name: score["roc_auc"] for name, score in scores.items()}, split)
        plots.plot_confusion(Path(workdir) / "confusion.png", {name: r["confusion"] for name, r in reports.items()},
                             LABEL_NAMES, split)
        return metrics_record(
            primary=self.primary_metric, model=scores["model"], baselines={BASELINE: scores[BASELINE]},
            confusion={name: r["confusion"] for name, r in reports.items()},
            evaluated_on=data.evaluated_on, reviews=len(reviews),
        )

    # --- export ---------------------------------------------------------------------------------
    def endpoints(self, model, preprocessor: pipeline.Preprocessor):
        def serve(texts):
            # [batch] raw strings → the training pipeline's ids → [batch] probability and label.
            ids = pipeline.to_padded_ids(preprocessor.encode(texts), preprocessor.sequence_length)
            probability = tf.reshape(model(ids, training=False), [-1])
            label = tf.where(probability >= 0.5, tf.constant(LABEL_NAMES[1]), tf.constant(LABEL_NAMES[0]))
            return {"probability": probability, "label": label}

        return {"serve": (serve, [tf.TensorSpec([None], tf.string, name="texts")])}

    def export_examples(self, data: SentimentData) -> dict[str, list[np.ndarray]]:
        return {"serve": [np.asarray(pipeline.awkward_inputs(data.test[0].text), dtype=object)]}

    def write_samples(self, data: SentimentData, folder: Path) -> list[str]:
        """A few test reviews (both labels first) as UTF-8 .txt files: the inputs ``predict`` takes."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        chosen = pipeline.sample_reviews(data.test, _SAMPLES)
        paths = []
        for index, review in enumerate(chosen):
            path = folder / f"review_{index}_{LABEL_NAMES[review.label]}.txt"
            atomic_write_text(path, review.text + "\n")
            paths.append(str(path))
        return paths

    # --- predict on an exported model -----------------------------------------------------------
    def predict_arguments(self, inputs: Sequence[str]) -> list[np.ndarray]:
        """Each input is a review's text or a UTF-8 .txt file (--text / --file say which; see review_from_argument);
        an empty review (or an empty file) is a TaskError naming its position."""
        kind = self.input_kind or "auto"
        reviews = [aclimdb.review_from_argument(item, kind) for item in inputs]
        export.refuse_empty_texts(reviews, inputs, "the text of a review, or a UTF-8 .txt file holding one")
        return [np.asarray(reviews, dtype=object)]

    def predict_results(self, inputs: Sequence[str], outputs: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [
            {"input": pipeline.shorten(item, 80), "probability": float(p), "label": label.decode("utf-8")}
            for item, p, label in zip(inputs, outputs["probability"], outputs["label"])
        ]


TASK = SentimentTask
