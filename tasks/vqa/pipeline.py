"""VQA records → tf.data, and the fitted Preprocessor shared by training and the SavedModel.

Everything fitted (question vocabulary, answer table, question-type prior, the image encoder
pretrained on the training scenes) is fitted on the training split only, in ``Preprocessor.fit``
(the train step), and saved beside the checkpoint. ``Preprocessor.encode`` is the one map from raw
input to model input: tf.data calls it on batches of question strings, the ``answer`` endpoint on
the strings and decoded JPEGs it receives. The image half of ``encode`` (the frozen encoder on
decoded pixels) runs once per image ahead of training and its features are cached on disk
(common.feature_cache.cached_feature_table, keyed by the encoder's weights fingerprint). Images are stored once
per image in a memory-mapped table and gathered per batch inside the tf.data map, so five questions
about one scene do not hold five copies of it, and no table becomes a graph constant.
"""

from __future__ import annotations

import collections
import logging
from pathlib import Path
from typing import Any, Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from common import encoder_pretraining, encoders, feature_cache, training
from common import images as common_images
from common import preprocessor as preprocessor_base
from common.errors import DataError
from common.metrics import vqa as vqa_metric
from common.pipelines import AUTOTUNE
from data.vqa import VQARecord
from tasks.vqa import model as vqa_model

logger = logging.getLogger(__name__)

ENCODER_WEIGHTS = "encoder.weights.h5"  # in the preprocessor folder
BASELINES = ("always_yes", "question_type_prior")  # scored beside the model by ``score_answers``


# --- fitting helpers (plain Python on records) ---------------------------------------------------------


def build_answer_vocabulary(records: Sequence[VQARecord], max_answers: int) -> list[str]:
    """The ``max_answers`` most frequent normalised human answers (all 10 per question), ties alphabetical."""
    counts = collections.Counter(vqa_metric.normalize_answer(a) for r in records for a in r.answers)
    counts.pop("", None)  # an answer of punctuation only says nothing
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [answer for answer, _ in ranked[:max_answers]]


def answer_targets(
    records: Sequence[VQARecord], answer_index: dict[str, int], soft: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Sparse targets: (indices [N, 10] int32, values [N, 10] float32); unused slots have value 0.

    soft: every in-vocabulary answer gets its official accuracy score, normalised to sum 1 (the
    softmax cross-entropy target). Otherwise one-hot on the normalised most frequent answer.
    A row of zeros means no answer of that question is in the vocabulary.
    """
    width = max([len(r.answers) for r in records] + [1])
    indices = np.zeros((len(records), width), np.int32)
    values = np.zeros((len(records), width), np.float32)
    for row, record in enumerate(records):
        if soft:
            scores = {a: s for a, s in vqa_metric.soft_scores(record.answers).items() if a in answer_index and s > 0}
        else:
            top = vqa_metric.normalize_answer(record.multiple_choice_answer)
            scores = {top: 1.0} if top in answer_index else {}
        total = sum(scores.values())
        for column, (answer, score) in enumerate(sorted(scores.items())):
            indices[row, column] = answer_index[answer]
            values[row, column] = score / total
    return indices, values


def question_type_prior(records: Sequence[VQARecord]) -> tuple[dict[str, str], str]:
    """({question_type: its most frequent normalised answer}, the overall most frequent answer)."""
    by_type: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    overall: collections.Counter = collections.Counter()
    for record in records:
        for answer in record.answers:
            normalised = vqa_metric.normalize_answer(answer)
            by_type[record.question_type][normalised] += 1
            overall[normalised] += 1
    best = {t: min(c.items(), key=lambda item: (-item[1], item[0]))[0] for t, c in by_type.items()}
    return best, min(overall.items(), key=lambda item: (-item[1], item[0]))[0]


def question_vectorizer(max_length: int, vocabulary: Sequence[str] | None = None) -> keras.layers.TextVectorization:
    """Lower-cases, strips punctuation, splits on whitespace; 0 = padding, 1 = unknown word.

    vocabulary: a fitted vocabulary (``get_vocabulary()``, special tokens included) to rebuild the
    same layer; None = an empty layer to ``adapt``.
    """
    return keras.layers.TextVectorization(
        standardize="lower_and_strip_punctuation",
        split="whitespace",
        output_mode="int",
        output_sequence_length=max_length,  # right padding with 0 (cuDNN-friendly masks)
        vocabulary=None if vocabulary is None else list(vocabulary),
        name="question_vectorizer",
    )


def flat_scores(official: dict[str, Any]) -> dict[str, Any]:
    """The official accuracy dict → {"vqa_accuracy", "vqa_accuracy_<answer type>" ..., "per_question_type"}
    (the results.json shape: the printed summary shows the flat scalars of the model beside the baselines)."""
    per_type = {f"vqa_accuracy_{t.replace('/', '_')}": v for t, v in sorted(official["perAnswerType"].items())}
    return {"vqa_accuracy": official["overall"], **per_type, "per_question_type": dict(official["perQuestionType"])}


def score_answers(records: Sequence[VQARecord], predicted: Sequence[str], preprocessor: "Preprocessor",
                  logged_examples: int) -> dict[str, dict[str, Any]]:
    """Official VQA accuracy ({"model", *BASELINES} → ``flat_scores``) of the model's answers and of
    the baselines (always "yes"; the fitted question-type prior); logs a few examples and the table."""
    prior, fallback = preprocessor.prior, preprocessor.prior_fallback
    predictions = {
        "model": {r.question_id: answer for r, answer in zip(records, predicted)},
        "always_yes": {r.question_id: "yes" for r in records},
        "question_type_prior": {r.question_id: prior.get(r.question_type, fallback) for r in records},
    }
    annotations = {r.question_id: {"answers": list(r.answers), "answer_type": r.answer_type,
                                   "question_type": r.question_type} for r in records}  # fmt: skip
    scores = {name: flat_scores(vqa_metric.vqa_accuracy(p, annotations)) for name, p in predictions.items()}
    for record, answer in list(zip(records, predicted))[:logged_examples]:
        logger.info("Q%d %r | humans %s | model %r (accuracy %.2f)", record.question_id, record.question,
                    list(record.answers), answer, vqa_metric.question_accuracy(answer, record.answers))
    for key in (k for k in scores["model"] if k.startswith("vqa_accuracy")):
        logger.info("%-26s model %.2f | %s", key, scores["model"][key],
                    " | ".join(f"{name} {scores[name][key]:.2f}" for name in BASELINES))
    return scores


def image_table(records: Sequence[VQARecord]) -> tuple[list[Path], dict[Path, int]]:
    """Unique image paths of ``records`` (sorted) and each path's row in the table."""
    paths = sorted({r.image_path for r in records})
    return paths, {path: row for row, path in enumerate(paths)}


def _pretrain_on_scenes(encoder: keras.Model, train: Sequence[VQARecord], scenes: dict, config) -> dict:
    """Trains ``encoder`` on the object attributes of the training scenes (the synthetic stand-in for
    ImageNet pretraining); returns the Keras history."""
    from data.synthetic import questions as synthetic_questions

    paths = sorted({r.image_path for r in train})
    image_of_path = {r.image_path: r.image_id for r in train}
    attributes = np.stack([synthetic_questions.attribute_targets(scenes[image_of_path[p]]) for p in paths])
    logger.info("Pretraining the %s encoder on the object attributes of %d training scenes", config.encoder, len(paths))
    return encoder_pretraining.pretrain_encoder(
        encoder, common_images.load_pixels(paths, config.image_size), attributes,
        epochs=config.encoder_pretrain_epochs, batch_size=config.batch_size, verbose=training.verbosity(config),
        jit_compile=config.jit_compile, rectify=True,
    )  # fmt: skip


# --- the fitted state -------------------------------------------------------------------------------------


class Preprocessor(preprocessor_base.Preprocessor):
    """Question vectorizer, answer table, question-type prior (the baseline) and image encoder.

    settings: the config values the state depends on (image_features, encoder, image_size,
    encoder_feature_dim, max_question_length), so that a loaded preprocessor needs no config.
    encoder: the frozen CNN whose features are cached (image_features="cached"); None when the CNN
    is part of the model (end_to_end), where ``encode`` passes the pixels through.
    """

    task = "vqa"

    def __init__(self, settings: dict[str, Any], question_vocabulary: Sequence[str], answers: Sequence[str],
                 prior: dict[str, str], prior_fallback: str, encoder: keras.Model | None = None,
                 facts: dict[str, Any] | None = None):  # fmt: skip
        self.settings = dict(settings)
        self.answers = list(answers)
        self.prior = dict(prior)
        self.prior_fallback = prior_fallback
        self.encoder = encoder
        self.facts = dict(facts or {})  # what the fit found (coverage, encoder pretraining history)
        self.vectorizer = question_vectorizer(self.settings["max_question_length"], question_vocabulary)
        self.vectorizer(tf.constant([""]))  # built before an export tracks it

    @property
    def image_size(self) -> int:
        return int(self.settings["image_size"])

    @property
    def question_vocabulary_size(self) -> int:
        return self.vectorizer.vocabulary_size()

    @property
    def image_feature_dim(self) -> int | None:
        """Width of the cached features; None when the model takes pixels."""
        return None if self.encoder is None else int(self.encoder.output.shape[-1])

    # --- fit / save / load ----------------------------------------------------------------------------
    @classmethod
    def fit(cls, task, data, workdir: Path) -> "Preprocessor":
        config = task.config
        encoders.check_weights_request(config.encoder, config.encoder_weights, task.download)
        answers = build_answer_vocabulary(data.train, config.max_answers)
        if len(answers) < 2:
            raise DataError(f"{data.info.get('source')}: the training answers hold {len(answers)} distinct answers; "
                            "expected at least 2")
        vectorizer = question_vectorizer(config.max_question_length)
        vectorizer.adapt(tf.constant([r.question for r in data.train]), batch_size=1024)
        prior, fallback = question_type_prior(data.train)
        _, target_values = answer_targets(data.train, {a: k for k, a in enumerate(answers)}, config.soft_targets)
        covered = float((target_values.sum(axis=1) > 0).mean())
        facts: dict[str, Any] = {"train_questions_with_an_answer_in_vocabulary": covered, "encoder_pretraining": None}
        encoder = None
        if config.image_features == "cached":
            encoder = vqa_model.build_image_encoder(
                config.encoder, config.image_size, config.encoder_feature_dim, config.encoder_weights
            )
            if data.scenes is not None and config.encoder_pretrain_epochs > 0:
                history = _pretrain_on_scenes(encoder, data.train, data.scenes, config)
                facts["encoder_pretraining"] = {key: epochs[-1] for key, epochs in history.items()}
                logger.info("Encoder pretraining (last epoch): %s", facts["encoder_pretraining"])
            elif config.encoder_weights is None and config.encoder in ("strided_cnn", "small_cnn"):
                logger.warning("The %s encoder keeps RANDOM weights (no scene files to pretrain on, no "
                               "encoder_weights)", config.encoder)
        settings = {key: getattr(config, key) for key in
                    ("image_features", "encoder", "image_size", "encoder_feature_dim", "max_question_length")}
        logger.info("VQA preprocessor: %d question words, %d answers, %s", vectorizer.vocabulary_size(),
                    len(answers), facts)
        return cls(settings, vectorizer.get_vocabulary(), answers, prior, fallback, encoder, facts)

    def get_state(self) -> dict[str, Any]:
        return {"settings": self.settings, "question_vocabulary": self.vectorizer.get_vocabulary(),
                "answers": self.answers, "question_type_prior": self.prior, "prior_fallback": self.prior_fallback,
                "facts": self.facts}  # fmt: skip

    def save_files(self, folder: Path) -> None:
        if self.encoder is not None:
            self.encoder.save_weights(str(Path(folder) / ENCODER_WEIGHTS))

    @classmethod
    def from_state(cls, state: dict[str, Any], folder: Path) -> "Preprocessor":
        settings = state["settings"]
        encoder = None
        if settings["image_features"] == "cached":
            encoder = vqa_model.build_image_encoder(
                settings["encoder"], settings["image_size"], settings["encoder_feature_dim"],
                weights_path=str(Path(folder) / ENCODER_WEIGHTS),
            )  # fmt: skip
        return cls(settings, state["question_vocabulary"], state["answers"], state["question_type_prior"],
                   state["prior_fallback"], encoder, state.get("facts"))  # fmt: skip

    def layers(self) -> list[Any]:
        return [self.vectorizer] + ([self.encoder] if self.encoder is not None else [])

    # --- encoding ---------------------------------------------------------------------------------------
    def encode(self, questions: tf.Tensor, pixels: tf.Tensor | None = None) -> dict[str, tf.Tensor]:
        """questions [B] string → {"question_tokens": [B, L] int32}; with pixels [B, S, S, 3] float32 in
        [0, 255] also "image": the encoder's features [B, D] (cached mode) or the pixels (end_to_end).

        A question with no word left after standardisation (empty, punctuation only) becomes one
        unknown-word token: a fully masked sequence would reach the LSTMs, which cuDNN rejects.
        """
        tokens = tf.cast(self.vectorizer(questions), tf.int32)  # [B, L]
        empty = tf.reduce_max(tokens, axis=1, keepdims=True) == 0  # [B, 1]
        first = tf.range(tf.shape(tokens)[1])[None, :] == 0  # [1, L]
        encoded = {"question_tokens": tf.where(empty & first, tf.ones_like(tokens), tokens)}
        if pixels is not None:
            encoded["image"] = self.encoder(pixels, training=False) if self.encoder is not None else pixels
        return encoded

    def image_inputs(self, paths: Sequence[Path], cache_dir: Path) -> np.ndarray:
        """The image half of ``encode`` for a table of image files, done once: cached features
        [N, D] float32 (cache keyed by the encoder's weights) or, end to end, pixels [N, S, S, 3] uint8.
        Either table is memory-mapped read-only from one file under ``cache_dir``, written on first use."""
        if self.encoder is None:
            return feature_cache.cached_pixel_table(paths, self.image_size, cache_dir)
        key = f"{self.settings['encoder']}-{self.image_size}-{encoders.weights_fingerprint(self.encoder)}"
        return feature_cache.cached_feature_table(self.encoder, key, paths, cache_dir, batch_size=32)


# --- tf.data ---------------------------------------------------------------------------------------------


def split_dataset(data, records: Sequence[VQARecord], preprocessor: Preprocessor, config, shuffle: bool,
                  training: bool) -> tf.data.Dataset:
    """``records_dataset`` of ``records`` (a split of ``data``, a tasks.vqa.task.VQAData).

    One table over every split's images, as the features were first cached: later calls only open it."""
    paths, rows = image_table(data.train + data.validation + data.test)
    table = preprocessor.image_inputs(paths, data.feature_cache_dir)
    return records_dataset(records, table, rows, preprocessor, config, shuffle, training)


def train_and_validation(data, preprocessor: Preprocessor, config) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """The task's ``datasets``: the training split shuffled, the validation split in order."""
    return (split_dataset(data, data.train, preprocessor, config, shuffle=True, training=True),
            split_dataset(data, data.validation, preprocessor, config, shuffle=False, training=True))  # fmt: skip


def records_dataset(records: Sequence[VQARecord], table: np.ndarray, rows: dict[Path, int],
                    preprocessor: Preprocessor, config, shuffle: bool, training: bool) -> tf.data.Dataset:
    """``make_dataset`` of ``records`` whose images are rows of ``table`` (``Preprocessor.image_inputs``).

    training: questions none of whose answers is in the answer table have no target and are left
    out; otherwise (evaluation) every record stays, in order."""
    answer_index = {answer: k for k, answer in enumerate(preprocessor.answers)}
    indices, values = answer_targets(records, answer_index, config.soft_targets)
    keep = values.sum(axis=1) > 0 if training else np.ones(len(records), bool)
    return make_dataset(
        table, np.asarray([rows[r.image_path] for r in records], np.int32)[keep],
        [r.question for r, kept in zip(records, keep) if kept], (indices[keep], values[keep]),
        len(preprocessor.answers), config.batch_size, shuffle, config.seed, preprocessor.encode,
    )  # fmt: skip


def make_dataset(
    table: np.ndarray,
    image_rows: np.ndarray,
    questions: Sequence[str],
    targets: tuple[np.ndarray, np.ndarray],
    num_answers: int,
    batch_size: int,
    shuffle: bool,
    seed: int,
    encode: Callable[[tf.Tensor], dict[str, tf.Tensor]],
) -> tf.data.Dataset:
    """Batches of ({"image": [B, ...], "question_tokens": [B, L]}, targets [B, K] float32).

    table: [images, S, S, 3] uint8 pixels or [images, D] float32 features, in memory or memory-mapped;
    image_rows: [N] row of each question's image; targets: the sparse (indices, values) of
    ``answer_targets``, made dense per batch; encode: ``Preprocessor.encode`` (applied to each batch of
    question strings).

    The dataset runs over question positions only; each batch's rows, questions and targets are read
    from the NumPy arrays (common.feature_cache.gather_rows), so nothing dataset-sized is a constant of the
    tf.data graph (VQA v2 train: 82,783 images x 2,048 floats, 443,757 questions). Shuffling positions
    draws the same order as shuffling the examples themselves did.
    """
    image_rows = np.asarray(image_rows, np.int32)
    question_bytes = np.array([question.encode("utf-8") for question in questions], object)
    indices, values = (np.asarray(targets[0], np.int32), np.asarray(targets[1], np.float32))

    def load(positions):
        rows, question, target_indices, target_values = feature_cache.gather_rows(
            [image_rows, question_bytes, indices, values], positions)  # fmt: skip
        (image,) = feature_cache.gather_rows([table], rows)
        # Sparse [B, W] → dense [B, K]; a repeated index 0 with value 0 (unused slots) adds nothing.
        count = tf.shape(target_indices)[0]
        example = tf.broadcast_to(tf.range(count)[:, None], tf.shape(target_indices))
        dense = tf.scatter_nd(tf.stack([example, target_indices], axis=-1), target_values, [count, num_answers])
        inputs = {"image": tf.cast(image, tf.float32), "question_tokens": encode(question)["question_tokens"]}
        return inputs, dense

    dataset = tf.data.Dataset.range(len(image_rows))
    if shuffle:
        dataset = dataset.shuffle(buffer_size=max(len(image_rows), 1), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).map(load, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)
