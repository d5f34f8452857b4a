"""Review text → token ids → tf.data, the fitted ``Preprocessor`` (vocabulary + TF-IDF baseline), and the
splits of the training reviews (by movie or at random).

``Preprocessor.encode`` (raw strings → word ids, TensorFlow ops) is the one path from text to model
input: the training and evaluation datasets are built from its output and the exported ``serve``
graph calls it. Token ids are right-padded with 0 (the Embedding's mask value) and every review keeps at
least one id, so a masked LSTM may take the cuDNN kernel on a GPU (it needs right padding and no fully
masked row). Reviews longer than ``sequence_length`` tokens keep their first tokens.

Text stays TensorFlow (tf.strings, Keras TextVectorization in tf.data) under every Keras backend; only the
layers' own standardisation and ragged output are TensorFlow-only in Keras (see ``_ON_TENSORFLOW``).

The baseline is scikit-learn's (the field's library for it): ``TfidfVectorizer`` of 1..n-grams with sublinear
tf → ``LogisticRegression``, C chosen on validation. It is saved with joblib (a pickle: load only a WORKDIR you
trust, as for any checkpoint) beside the vocabulary and scored in Python; it is not part of the SavedModel.
"""

from __future__ import annotations

import itertools
import json
import logging
import random
import re
import string
from pathlib import Path
from typing import Any, Sequence

import joblib
import keras
import numpy as np
import sklearn
import tensorflow as tf
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from common import preprocessor as preprocessor_lib
from common import progress
from common.errors import TaskError
from common.pipelines import AUTOTUNE
from data.aclimdb import Review
from tasks.sentiment.config import Config

logger = logging.getLogger(__name__)

_PUNCTUATION = f"[{re.escape(string.punctuation)}]"
_VECTORIZE_CHUNK = 2048  # reviews per call of a vectorizer while adapting it or encoding a split
_LENGTH_SAMPLE = 2000  # training reviews whose full token counts are reported (the cut at sequence_length)
_PREDICTION_CHUNK_BATCHES = 16  # batches per model.predict call while scoring a split (one progress step)
# Files of the saved preprocessor (beside preprocessor.json in WORKDIR/checkpoints/preprocessor/).
VOCABULARY_FILE = "vocabulary.json"  # word ids of the LSTM's input: "" (padding), "[UNK]", then words
# {"vectorizer": TfidfVectorizer, "classifier": LogisticRegression, "sklearn": its version}
BASELINE_FILE = "baseline.joblib"
# The baseline's tokens: runs of word characters, one-letter words included ("i", "a": "i loved" is a bigram).
BASELINE_TOKEN_PATTERN = r"(?u)\b\w+\b"
_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
PADDING_ID, OOV_ID = 0, 1  # TextVectorization's reserved ids: "" (masked by the Embedding) and "[UNK]"
# Keras runs a TextVectorization's own ``standardize`` function and gives ragged output only on TensorFlow (on
# another backend it hands the function NumPy arrays, which no tf.data graph has, and returns dense arrays).
# There the vectorizers get neither: ``vectorize`` and ``adapt`` standardise first, ``word_ids`` cuts the padding.
# On TensorFlow the layers stay as they were, and so do its results and the exported graph.
_ON_TENSORFLOW = keras.backend.backend() == "tensorflow"
_WIDTH_STEP = 32  # off TensorFlow, batch widths in tokens are multiples of this (see _compiled_width)


def standardize(texts: tf.Tensor) -> tf.Tensor:
    """Lower-case (Unicode), drop ``<br />`` line breaks and ASCII punctuation. [batch] string → same."""
    # Invalid UTF-8 from a caller becomes U+FFFD instead of an error inside the graph.
    texts = tf.strings.unicode_transcode(texts, input_encoding="UTF-8", output_encoding="UTF-8", errors="replace")
    texts = tf.strings.lower(texts, encoding="utf-8")
    texts = tf.strings.regex_replace(texts, r"<br\s*/?>", " ")
    return tf.strings.regex_replace(texts, _PUNCTUATION, "")


def word_vectorizer(max_tokens: int | None, vocabulary: Sequence[str] | None = None) -> keras.layers.TextVectorization:
    """[batch] strings → [batch, (words)] int64 ids (``word_ids`` gives them ragged on every backend).
    ``vocabulary``: a fitted one (from ``get_vocabulary()``, padding and "[UNK]" first), or None for a layer
    to ``adapt``."""
    # Off TensorFlow (see _ON_TENSORFLOW) the ids come right-padded with 0 to the batch's longest review.
    return keras.layers.TextVectorization(
        max_tokens=max_tokens, standardize=standardize if _ON_TENSORFLOW else None, split="whitespace",
        output_mode="int", ragged=_ON_TENSORFLOW, vocabulary=None if vocabulary is None else list(vocabulary),
        name="text_vectorization",
    )


def vectorize(vectorizer: keras.layers.TextVectorization, texts: tf.Tensor) -> tf.Tensor | tf.RaggedTensor:
    """[batch] raw strings → the output of ``vectorizer`` (one of this module's) on their standardised form.

    Under a backend other than TensorFlow call it inside a graph (tf.data, tf.function): called eagerly there,
    a Keras layer returns the backend's arrays instead of TF tensors."""
    return vectorizer(texts if _ON_TENSORFLOW else standardize(texts))


def word_ids(vectorizer: keras.layers.TextVectorization, texts: tf.Tensor) -> tf.RaggedTensor:
    """[batch] raw strings → [batch, (words)] ragged int64 ids of a ``word_vectorizer`` (see ``vectorize``)."""
    ids = vectorize(vectorizer, texts)
    if isinstance(ids, tf.RaggedTensor):
        return ids  # TensorFlow: the layer's own ragged output, as the exported graph has always had it
    # Padding (id 0) is no word's id, so each row ends where its padding starts.
    return tf.RaggedTensor.from_tensor(ids, padding=PADDING_ID)


def _texts_dataset(texts: Sequence[str]) -> tf.data.Dataset:
    """``texts`` in [chunk] string batches; functions mapped over it run in a graph under every backend."""
    return tf.data.Dataset.from_tensor_slices(tf.constant(list(texts), tf.string)).batch(_VECTORIZE_CHUNK)


def baseline_standardize(text: str) -> str:
    """One raw review → the baseline's text: lower-case, ``<br />`` line breaks as spaces (module-level, so the
    pickled vectorizer can refer to it)."""
    return _BR.sub(" ", text).lower()


def adapt(vectorizer: keras.layers.TextVectorization, texts: Sequence[str]) -> keras.layers.TextVectorization:
    texts = _texts_dataset(texts)
    vectorizer.adapt(texts if _ON_TENSORFLOW else texts.map(standardize))
    return vectorizer


class Preprocessor(preprocessor_lib.Preprocessor):
    """What the sentiment task fits on the training split: the word vocabulary of the LSTM's input
    and the whole TF-IDF → logistic-regression baseline (scikit-learn's vectorizer and classifier)."""

    task = "sentiment"

    def __init__(self, vectorizer: keras.layers.TextVectorization, sequence_length: int,
                 baseline_vectorizer: TfidfVectorizer, baseline_classifier: LogisticRegression,
                 summary: dict[str, Any]):
        self.vectorizer = vectorizer
        self.sequence_length = int(sequence_length)  # tokens kept per review
        self.baseline_vectorizer = baseline_vectorizer
        self.baseline_classifier = baseline_classifier
        self.summary = summary  # JSON facts of the fit (vocabulary size, review lengths, baseline's choice of C)
        vectorizer(tf.constant([""]))  # built now: an export may track it before any real call

    @property
    def vocabulary_size(self) -> int:
        return int(self.vectorizer.vocabulary_size())

    @classmethod
    def fit(cls, task, data, workdir: Path) -> "Preprocessor":
        config = task.config
        texts = [r.text for r in data.train]
        with progress.stage(f"word vocabulary of {len(texts):,} training reviews"):
            vectorizer = adapt(word_vectorizer(config.max_tokens), texts)
        # Lengths before the cut at sequence_length, to report how much text the model does not see.
        sample = _texts_dataset(texts[:_LENGTH_SAMPLE]).map(lambda chunk: word_ids(vectorizer, chunk).row_lengths())
        lengths = np.concatenate([chunk.numpy() for chunk in sample])
        baseline_vectorizer, classifier, baseline_summary = fit_baseline(
            config, (texts, labels_of(data.train)), ([r.text for r in data.validation], labels_of(data.validation)),
        )
        summary = {
            "vocabulary_size": int(vectorizer.vocabulary_size()),
            "train_tokens_per_review": {
                "mean": float(np.mean(lengths)),
                "max": int(np.max(lengths)),
                "cut_fraction": float(np.mean(lengths > config.sequence_length)),
            },
            "baseline": baseline_summary,
        }
        return cls(vectorizer, config.sequence_length, baseline_vectorizer, classifier, summary)

    def get_state(self) -> dict[str, Any]:
        return {"sequence_length": self.sequence_length, "summary": self.summary}

    def save_files(self, folder: Path) -> None:
        # ``folder`` is the temporary folder of Preprocessor.save, swapped in whole: the files here are
        # written atomically together.
        folder = Path(folder)
        (folder / VOCABULARY_FILE).write_text(json.dumps(self.vectorizer.get_vocabulary(), ensure_ascii=False),
                                              encoding="utf-8")
        joblib.dump({"vectorizer": self.baseline_vectorizer, "classifier": self.baseline_classifier,
                     "sklearn": sklearn.__version__}, folder / BASELINE_FILE)

    @classmethod
    def from_state(cls, state: dict[str, Any], folder: Path) -> "Preprocessor":
        folder = Path(folder)
        # max_tokens=None: the saved vocabulary fixes the size (the cap only mattered when adapting).
        vectorizer = word_vectorizer(None, _read_vocabulary(folder / VOCABULARY_FILE))
        baseline_vectorizer, classifier = _read_baseline(folder / BASELINE_FILE)
        return cls(vectorizer, int(state["sequence_length"]), baseline_vectorizer, classifier, state["summary"])

    def layers(self) -> list[Any]:
        return [self.vectorizer]  # the serving graph's only fitted layer (the baseline is scikit-learn, not exported)

    def encode(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """[batch] raw review strings → [batch, (1..sequence_length)] int32 word ids, unpadded.

        The training/evaluation datasets (``encode_all``) and the exported ``serve`` graph both call it.
        A review with no words left after standardisation (empty, only punctuation or ``<br />``) becomes
        the single out-of-vocabulary id: an all-padding row would be fully masked, which the cuDNN LSTM
        kernel rejects on a GPU (DESIGN rule 15). Real reviews never lose their last word, so they are unchanged.
        Off TensorFlow it must run inside a graph (see ``vectorize``), as in ``encode_all``.
        """
        ids = word_ids(self.vectorizer, texts)[:, : self.sequence_length]
        empty = tf.cast(tf.equal(ids.row_lengths(), 0), tf.int64)  # [batch] 1 where no word is left
        filler = tf.RaggedTensor.from_row_lengths(tf.fill([tf.reduce_sum(empty)], tf.constant(OOV_ID, tf.int64)),
                                                  row_lengths=empty)
        return tf.cast(tf.concat([ids, filler], axis=1), tf.int32)

    def baseline_probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """[len(texts)] float64 P(positive) of the TF-IDF logistic regression."""
        texts = list(texts)
        if not texts:
            return np.zeros([0])
        return self.baseline_classifier.predict_proba(self.baseline_vectorizer.transform(texts))[:, 1]


def fit_baseline(
    config: Config, train: tuple[Sequence[str], np.ndarray], validation: tuple[Sequence[str], np.ndarray],
) -> tuple[TfidfVectorizer, LogisticRegression, dict[str, Any]]:
    """Fits the TF-IDF vectorizer on the training texts and one logistic regression per C of
    ``config.baseline_c_grid`` on their features; keeps the one with the highest validation accuracy
    (the first, i.e. smallest listed C, on a tie). Returns it, its vectorizer and a summary."""
    (train_texts, train_labels), (validation_texts, validation_labels) = train, validation
    vectorizer = TfidfVectorizer(
        preprocessor=baseline_standardize, token_pattern=BASELINE_TOKEN_PATTERN,
        ngram_range=(1, config.baseline_ngrams), min_df=config.baseline_min_df, sublinear_tf=True,
        dtype=np.float32,
    )
    with progress.stage(f"TF-IDF 1..{config.baseline_ngrams}-grams of {len(train_texts):,} training reviews"):
        try:
            train_features = vectorizer.fit_transform(list(train_texts))
        except ValueError as error:  # scikit-learn: "empty vocabulary; perhaps the documents only contain ..."
            raise TaskError(f"TF-IDF baseline: no n-gram occurs in baseline_min_df={config.baseline_min_df} of the "
                            f"{len(train_texts)} training reviews ({error}); expected a lower baseline_min_df"
                            ) from None
        validation_features = vectorizer.transform(list(validation_texts))
    best, accuracies = None, {}
    for c in config.baseline_c_grid:
        # liblinear: the exact solver for a binary L2 logistic regression on sparse features; seeded, so
        # the same data gives the same weights.
        classifier = LogisticRegression(C=c, solver="liblinear", max_iter=1000, random_state=config.seed)
        classifier.fit(train_features, np.asarray(train_labels).astype(np.int64))
        accuracy = float(np.mean(classifier.predict(validation_features) == np.asarray(validation_labels)))
        accuracies[str(c)] = accuracy
        logger.info("baseline TF-IDF → logistic regression, C=%g: validation accuracy %.4f", c, accuracy)
        if best is None or accuracy > best[1]:
            best = (c, accuracy, classifier)
    chosen_c, accuracy, classifier = best
    summary = {
        "library": f"scikit-learn {sklearn.__version__}",
        "features": int(train_features.shape[1]),
        "c": chosen_c,
        "best_val_accuracy": accuracy,
        "val_accuracy_per_c": accuracies,
    }
    logger.info("baseline: C=%g chosen on validation (accuracy %.4f), %d n-gram features", chosen_c, accuracy,
                summary["features"])
    return vectorizer, classifier, summary


def _read_baseline(path: Path) -> tuple[TfidfVectorizer, LogisticRegression]:
    if not Path(path).is_file():
        raise TaskError(f"{str(path)!r} is missing: this preprocessor was saved without the scikit-learn baseline "
                        f"(an older version of the task?); retrain in a new --workdir")
    try:
        saved = joblib.load(path)
    except Exception as error:  # unpickling fails in many ways (truncated file, other library versions)
        raise TaskError(f"{str(path)!r} cannot be read ({type(error).__name__}: {error}); expected the joblib file "
                        f"of the TF-IDF baseline; retrain in a new --workdir") from None
    if not isinstance(saved, dict) or not isinstance(saved.get("vectorizer"), TfidfVectorizer) \
            or not isinstance(saved.get("classifier"), LogisticRegression):
        raise TaskError(f"{str(path)!r} holds {type(saved).__name__}; expected a dict with a TfidfVectorizer "
                        f"'vectorizer' and a LogisticRegression 'classifier'; retrain in a new --workdir")
    if saved.get("sklearn") != sklearn.__version__:
        logger.warning("%s was saved by scikit-learn %s; this is %s (scikit-learn guarantees pickles only within "
                       "one version)", path, saved.get("sklearn"), sklearn.__version__)
    return saved["vectorizer"], saved["classifier"]


def _read_vocabulary(path: Path) -> list[str]:
    vocabulary = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(vocabulary, list) or not all(isinstance(token, str) for token in vocabulary):
        raise TaskError(f"{str(path)!r} is not a vocabulary (a JSON list of strings); retrain in a new --workdir")
    return vocabulary


def encode_all(preprocessor: Preprocessor, texts: Sequence[str]) -> tf.RaggedTensor:
    """All ``texts`` → ragged int32 ids [reviews, (1..sequence_length)], through ``preprocessor.encode``
    (mapped in tf.data: a graph, as ``encode`` needs under backends other than TensorFlow)."""
    chunks = _texts_dataset(texts).map(preprocessor.encode)
    chunks = list(progress.track(chunks, -(-len(texts) // _VECTORIZE_CHUNK), f"encoding {len(texts):,} reviews",
                                 unit=f"chunks of {_VECTORIZE_CHUNK}"))
    if not chunks:
        return tf.ragged.constant([], dtype=tf.int32, ragged_rank=1)
    return tf.concat(chunks, axis=0)


def to_padded_ids(ragged_ids: tf.RaggedTensor, sequence_length: int) -> tf.Tensor:
    """[batch, (tokens)] ragged → [batch, width] int, right-padded with 0, cut at ``sequence_length``.

    width is the longest row after the cut, but at least 1 so that a batch of zero reviews (an empty
    request to ``serve``) still has a time axis. Rows from ``Preprocessor.encode`` are never empty.
    """
    ragged_ids = ragged_ids[:, :sequence_length]
    width = tf.maximum(tf.cast(tf.reduce_max(ragged_ids.row_lengths()), tf.int32), 1)
    padded = ragged_ids.to_tensor(default_value=0, shape=tf.stack([ragged_ids.nrows(out_type=tf.int32), width]))
    return tf.cast(padded, tf.int32)


def labels_of(reviews: Sequence[Review]) -> np.ndarray:
    return np.asarray([r.label for r in reviews], dtype=np.float32)


def training_dataset(
    ids: tf.RaggedTensor, labels: np.ndarray, batch_size: int, shuffle: bool, seed: int, bucket_width: int,
    sequence_length: int,
) -> tf.data.Dataset:
    """(ids [batch, width], labels [batch]) batches; reviews of similar length share a batch.

    Shuffle before batching; with ``bucket_width`` > 0 batches are drawn from length bands so that
    short reviews are not padded to the longest one (the LSTM's cost grows with the padded width).
    """
    # Slices of a ragged tensor are ragged-rank-0 values; an identity map turns them into plain
    # 1-D tensors, which bucket_by_sequence_length (padded_batch) needs.
    dataset = tf.data.Dataset.from_tensor_slices((ids, labels)).map(_plain).cache()
    if shuffle:
        dataset = dataset.shuffle(buffer_size=max(int(ids.nrows()), 1), seed=seed, reshuffle_each_iteration=True)
    if bucket_width > 0 and sequence_length > bucket_width:
        boundaries = list(range(bucket_width, sequence_length + 1, bucket_width))
        dataset = dataset.bucket_by_sequence_length(
            element_length_func=lambda review, label: tf.shape(review)[0],
            bucket_boundaries=boundaries,
            bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
            pad_to_bucket_boundary=False,
        )
        dataset = dataset.map(lambda review, label: (_at_least_one_step(review), label), num_parallel_calls=AUTOTUNE)
        # Bucketing hides the number of batches from tf.data; it is known from the lengths, and Keras
        # needs it to end an epoch without an "ran out of data" warning (and to show progress).
        bands = np.searchsorted(boundaries, ids.row_lengths().numpy(), side="right")
        batches = int(sum(-(-count // batch_size) for count in np.bincount(bands) if count))
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(batches))
    else:
        dataset = dataset.ragged_batch(batch_size).map(
            lambda review, label: (to_padded_ids(review, sequence_length), label), num_parallel_calls=AUTOTUNE
        )
    if not _ON_TENSORFLOW:
        dataset = dataset.map(lambda review, label: (_compiled_width(review, sequence_length), label))
    return dataset.prefetch(AUTOTUNE)


def _plain(review, label):
    return review, label


def _at_least_one_step(padded: tf.Tensor) -> tf.Tensor:
    # A time axis even for a batch whose rows are all empty (only ids not from ``encode`` can be).
    width = tf.shape(padded)[1]
    return tf.cond(width > 0, lambda: padded, lambda: tf.zeros([tf.shape(padded)[0], 1], padded.dtype))


def _compiled_width(padded: tf.Tensor, sequence_length: int) -> tf.Tensor:
    """[batch, width] → [batch, width'] right-padded with 0: width rounded up to a multiple of _WIDTH_STEP, at
    most sequence_length (or width). Off TensorFlow only: JAX compiles fit's and predict's step once per input
    shape, and length-sorted or bucketed batches would bring nearly one width per batch (one compilation each,
    seconds); the padding is masked. TensorFlow's graphs take any width, and keep the exact ones."""
    width = tf.shape(padded)[1]
    rounded = (width + _WIDTH_STEP - 1) // _WIDTH_STEP * _WIDTH_STEP
    return tf.pad(padded, [[0, 0], [0, tf.maximum(width, tf.minimum(rounded, sequence_length)) - width]])


def _padded_batches(ids: tf.RaggedTensor, batch_size: int, sequence_length: int) -> tf.data.Dataset:
    dataset = tf.data.Dataset.from_tensor_slices(ids).ragged_batch(batch_size)
    dataset = dataset.map(lambda batch: to_padded_ids(batch, sequence_length), num_parallel_calls=AUTOTUNE)
    if not _ON_TENSORFLOW:
        dataset = dataset.map(lambda batch: _compiled_width(batch, sequence_length))
    return dataset.prefetch(AUTOTUNE)


def length_order(ids: tf.RaggedTensor) -> np.ndarray:
    """Indices that sort reviews by token count (stable): batches of similar lengths need little padding."""
    return np.argsort(ids.row_lengths().numpy(), kind="stable")


def prediction_dataset(
    ids: tf.RaggedTensor, batch_size: int, sequence_length: int
) -> tuple[tf.data.Dataset, np.ndarray]:
    """Batches of padded ids in order of length (less padding), and the order to undo it.

    ``probabilities[order] = model.predict(dataset)`` puts the outputs back in the reviews' order.
    """
    order = length_order(ids)
    return _padded_batches(tf.gather(ids, order), batch_size, sequence_length), order


def predict_in_chunks(model, batches, count: int, batch_size: int, stage: str) -> np.ndarray:
    """[count] outputs of ``model.predict`` over ``batches(start, stop)`` (a dataset of items start..stop),
    one chunk of whole batches at a time so that common.progress can show how far a long test split is.

    Chunks hold whole batches, so every batch (and so every number) is the one a single pass would see.
    """
    step = _PREDICTION_CHUNK_BATCHES * batch_size
    starts = range(0, count, step)
    # verbose=0: progress.track reports the chunks (a Keras bar per chunk would be noise).
    outputs = [model.predict(batches(start, min(start + step, count)), verbose=0).reshape(-1)
               for start in progress.track(starts, len(starts), stage, unit=f"chunks of {step} reviews")]
    return np.concatenate(outputs) if outputs else np.zeros([0], np.float32)


def model_probabilities(model, preprocessor: Preprocessor, texts: Sequence[str], batch_size: int) -> np.ndarray:
    """P(positive) of the LSTM for each of ``texts``, through ``encode`` and the evaluation batches."""
    ids = encode_all(preprocessor, texts)
    order = length_order(ids)
    ids = tf.gather(ids, order)
    sorted_probabilities = predict_in_chunks(
        model, lambda start, stop: _padded_batches(ids[start:stop], batch_size, preprocessor.sequence_length),
        len(texts), batch_size, "bidirectional LSTM on the reviews",
    )
    probabilities = np.empty_like(sorted_probabilities)
    probabilities[order] = sorted_probabilities
    return probabilities


def stratified_split(reviews: Sequence[Review], fraction: float, seed: int) -> tuple[list[Review], list[Review]]:
    """(rest, held_out): ``fraction`` of each label held out, chosen with ``seed``."""
    rng = random.Random(seed)
    rest, held_out = [], []
    for label in (0, 1):
        group = [r for r in reviews if r.label == label]
        rng.shuffle(group)
        count = int(round(len(group) * fraction))
        held_out += group[:count]
        rest += group[count:]
    rng.shuffle(rest)
    rng.shuffle(held_out)
    return rest, held_out


def grouped_split(reviews: Sequence[Review], fraction: float, seed: int) -> tuple[list[Review], list[Review]]:
    """(rest, held_out): whole groups (movies) held out, chosen with ``seed``, until ``fraction`` of the reviews
    is reached. No group has reviews on both sides, so movie-specific words (titles, names, plot) cannot carry
    a label from one side to the other, as they cannot from aclImdb's training half to its test half.
    Every review must have a group (``Review.group``)."""
    rng = random.Random(seed)
    members: dict[str, list[Review]] = {}
    for review in reviews:
        members.setdefault(review.group, []).append(review)
    groups = sorted(members)  # sorted first: the draw depends on the seed only, not on the reviews' order
    rng.shuffle(groups)
    target = int(round(len(reviews) * fraction))
    rest, held_out = [], []
    for group in groups:
        (held_out if len(held_out) < target else rest).extend(members[group])
    rng.shuffle(rest)
    rng.shuffle(held_out)
    return rest, held_out


def split_reviews(
    reviews: Sequence[Review], fraction: float, seed: int, how: str
) -> tuple[list[Review], list[Review], str]:
    """(rest, held_out, what was done): ``how`` "movie" holds out whole groups (``grouped_split``) when every
    review has one, else (tfds, imdb.npz) falls back to ``stratified_split`` with a warning; "random" is
    ``stratified_split``. The third item says which ran, for results.json."""
    if how == "movie":
        groups = {r.group for r in reviews}
        if reviews and None not in groups:
            rest, held_out = grouped_split(reviews, fraction, seed)
            if rest and held_out:
                return rest, held_out, f"by group ({len(groups):,} groups)"
            logger.warning("%d reviews in %d groups cannot hold out %.0f %% by group: splitting at random",
                           len(reviews), len(groups), 100 * fraction)
        else:
            logger.warning("validation_split='movie', but these reviews are not grouped by movie (no aclImdb ids or "
                           "urls files): splitting at random, so reviews of one movie may sit on both sides")
    rest, held_out = stratified_split(reviews, fraction, seed)
    return rest, held_out, "random, stratified by label"


def split_facts(reviews: Sequence[Review]) -> dict[str, int]:
    facts = {"reviews": len(reviews), "positive": int(sum(r.label for r in reviews))}
    if reviews and all(r.group is not None for r in reviews):
        facts["groups"] = len({r.group for r in reviews})
    return facts


def sample_reviews(reviews: Sequence[Review], count: int) -> list[Review]:
    """Up to ``count`` reviews, alternating positive and negative, in the split's order."""
    by_label = [[r for r in reviews if r.label == label] for label in (1, 0)]
    interleaved = [r for pair in itertools.zip_longest(*by_label) for r in pair if r is not None]
    return interleaved[:count]


def awkward_inputs(review: str) -> list[str]:
    """Inputs the exported model's fresh-process check calls ``serve`` on: one real review and the awkward cases."""
    return [
        review,
        "",  # empty: no tokens at all
        "<br /><br /><br />",  # only HTML line breaks: empty after standardisation
        "Un film très émouvant, magnifique. 素晴らしい映画でした 🎬",  # non-ASCII
        ("It was good, but the ending was not. " * 2703)[:100_000],  # a 100,000-character review
    ]


def shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
