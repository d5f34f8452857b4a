"""VQA records → arrays → tf.data: question tokens, image pixels or features, soft answer targets.

Everything fitted here (question vocabulary, answer vocabulary, question-type prior) is fitted on the
training split only. Images are stored once per image in a table and gathered per question inside
the tf.data map, so five questions about one scene do not hold five copies of its pixels.
"""

from __future__ import annotations

import collections
import logging
from pathlib import Path
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from common import images as common_images
from common.metrics import vqa as vqa_metric
from common.pipelines import AUTOTUNE
from data.vqa import VQARecord

logger = logging.getLogger(__name__)


def split_by_image(records: Sequence[VQARecord], fraction: float, seed: int) -> tuple[list[VQARecord], list[VQARecord]]:
    """(rest, held_out): a random ``fraction`` of the IMAGES (all their questions) goes to held_out."""
    image_ids = sorted({r.image_id for r in records})
    rng = np.random.default_rng(seed)
    rng.shuffle(image_ids)
    count = max(1, int(round(fraction * len(image_ids)))) if len(image_ids) > 1 else 0
    held = set(image_ids[:count])
    return [r for r in records if r.image_id not in held], [r for r in records if r.image_id in held]


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


def fit_question_vectorizer(questions: Sequence[str], max_length: int) -> keras.layers.TextVectorization:
    """Lower-cases, strips punctuation, splits on whitespace; 0 = padding, 1 = unknown word."""
    vectorizer = keras.layers.TextVectorization(
        standardize="lower_and_strip_punctuation",
        split="whitespace",
        output_mode="int",
        output_sequence_length=max_length,  # right padding with 0 (cuDNN-friendly masks)
        name="question_vectorizer",
    )
    vectorizer.adapt(tf.constant(list(questions)), batch_size=1024)
    return vectorizer


def tokenize(vectorizer: keras.layers.TextVectorization, questions: Sequence[str]) -> np.ndarray:
    """[N] questions → [N, max_length] int32 token ids."""
    if not questions:
        return np.zeros((0, int(vectorizer.get_config()["output_sequence_length"])), np.int32)
    return np.asarray(vectorizer(tf.constant(list(questions))), dtype=np.int32)


def load_pixels(paths: Sequence[Path], image_size: int, batch_size: int = 128) -> np.ndarray:
    """[N] image files → [N, S, S, 3] uint8, through the project's checked reader and in-graph decoder."""
    chunks = []
    for start in range(0, len(paths), batch_size):
        content = [common_images.read_image_bytes(p) for p in paths[start : start + batch_size]]
        decoded = common_images.decode_images(tf.constant(content), image_size)
        chunks.append(np.asarray(tf.cast(tf.round(decoded), tf.uint8)))
    return np.concatenate(chunks, axis=0)


def image_table(records_by_split: dict[str, Sequence[VQARecord]]) -> tuple[list[Path], dict[Path, int]]:
    """Unique image paths over all splits (sorted) and each path's row in the table."""
    paths = sorted({r.image_path for records in records_by_split.values() for r in records})
    return paths, {path: row for row, path in enumerate(paths)}


def make_dataset(
    table: np.ndarray,
    image_rows: np.ndarray,
    tokens: np.ndarray,
    target_indices: np.ndarray,
    target_values: np.ndarray,
    num_answers: int,
    batch_size: int,
    shuffle: bool,
    seed: int,
) -> tf.data.Dataset:
    """Batches of ({"image": [B, ...], "question_tokens": [B, L]}, targets [B, K] float32).

    table: [images, S, S, 3] uint8 pixels or [images, D] float32 features; image_rows: [N] row of
    each question's image. Targets are scattered from their sparse form per example.
    """
    table_tensor = tf.constant(table)

    def to_example(inputs, targets):
        row, question_tokens = inputs
        indices, values = targets
        image = tf.cast(tf.gather(table_tensor, row), tf.float32)
        dense = tf.scatter_nd(indices[:, None], values, [num_answers])  # repeated index 0 with value 0 adds nothing
        return {"image": image, "question_tokens": question_tokens}, dense

    dataset = tf.data.Dataset.from_tensor_slices(
        ((image_rows.astype(np.int32), tokens.astype(np.int32)), (target_indices, target_values))
    )
    if shuffle:
        dataset = dataset.shuffle(buffer_size=max(len(image_rows), 1), seed=seed, reshuffle_each_iteration=True)
    return dataset.map(to_example, num_parallel_calls=AUTOTUNE).batch(batch_size).prefetch(AUTOTUNE)
