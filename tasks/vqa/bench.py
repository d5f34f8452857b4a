"""``python run.py vqa bench``: the input pipeline alone at VQA v2 train size, from a memory-mapped table.

A seeded stand-in of the real scale is written under WORKDIR/bench (reused when present): 443,757
questions about 82,783 images (VQA v2 train2014), image features float32 [82,783, bench_feature_dim]
(ResNet-50's pooled width 2,048 by default: 0.68 GB) in one .npy, opened with np.load(mmap_mode="r") as
the task's feature table is. The task's own ``make_dataset`` and ``Preprocessor.encode`` (question
vectorizer) then run over it; nothing is trained. The figures: examples/s over ``bench_batches`` batches,
seconds to the first batch (the full shuffle buffer fills first), peak RSS (getrusage) and the resident
anonymous / file-backed memory (mapped table pages are file-backed page cache, not a copy), and the
size of the dataset's graph (kilobytes: the table is not a graph constant).

``bench_full_size=False`` (the tiny preset) shrinks everything 100-fold so that a test runs it in seconds.
The stand-in's questions are 3 to 10 words drawn from a Zipf law over 12,000 words (real VQA v2 questions
average 6.2 words), each with ten annotator answers drawn from a Zipf law over ``max_answers`` answers.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from common import pipeline_bench
from tasks.vqa import pipeline

FULL_QUESTIONS = 443_757  # VQA v2 train2014 questions
FULL_IMAGES = 82_783  # VQA v2 train2014 (COCO train2014) images
SMALL_DIVISOR = 100  # bench_full_size=False: 4,437 questions about 827 images
QUESTION_WORDS = 12_000  # stand-in question vocabulary (VQA v2 train: about 13,000 words after lower-casing)
ANSWERS_PER_QUESTION = 10  # VQA v2: ten human answers per question


def stand_in_questions(count: int, seed: int) -> tuple[list[str], list[str]]:
    """(questions, their vocabulary): ``count`` seeded questions of 3-10 words, Zipf-distributed word ids."""
    generator = np.random.default_rng(seed)
    vocabulary = [f"w{index}" for index in range(QUESTION_WORDS)]
    lengths = generator.integers(3, 11, size=count)
    words = np.minimum(generator.zipf(1.3, size=int(lengths.sum())) - 1, QUESTION_WORDS - 1)
    ends = np.cumsum(lengths)
    questions = [" ".join(vocabulary[k] for k in words[end - n : end]) + "?" for n, end in zip(lengths, ends)]
    return questions, vocabulary


def run(task, workdir: Path) -> dict[str, Any]:
    config = task.config
    divisor = 1 if config.bench_full_size else SMALL_DIVISOR
    questions_count, images_count = FULL_QUESTIONS // divisor, FULL_IMAGES // divisor
    folder = Path(workdir) / "bench"
    start = time.perf_counter()
    table = pipeline_bench.write_stand_in_table(
        folder / f"vqa_features_{images_count}x{config.bench_feature_dim}.npy", images_count,
        config.bench_feature_dim, config.seed)  # fmt: skip
    questions, words = stand_in_questions(questions_count, config.seed)
    generator = np.random.default_rng(config.seed + 1)
    image_rows = generator.integers(0, images_count, size=questions_count).astype(np.int32)
    answer_indices = np.minimum(generator.zipf(1.5, size=(questions_count, ANSWERS_PER_QUESTION)) - 1,
                                config.max_answers - 1).astype(np.int32)  # fmt: skip
    answer_values = np.full(answer_indices.shape, 1.0 / ANSWERS_PER_QUESTION, np.float32)
    settings = {"image_features": "cached", "encoder": config.encoder, "image_size": config.image_size,
                "encoder_feature_dim": config.bench_feature_dim, "max_question_length": config.max_question_length}
    preprocessor = pipeline.Preprocessor(settings, ["", "[UNK]", *words],
                                         [f"answer{k}" for k in range(config.max_answers)], {}, "answer0")
    stand_in_seconds = time.perf_counter() - start
    start = time.perf_counter()
    dataset = pipeline.make_dataset(table, image_rows, questions, (answer_indices, answer_values),
                                    config.max_answers, config.batch_size, True, config.seed, preprocessor.encode)
    build_seconds = time.perf_counter() - start
    measured = pipeline_bench.measure_pipeline(dataset, config.bench_batches)
    return {"figures": {"input_pipeline": {
        "full_size": config.bench_full_size, "questions": questions_count, "images": images_count,
        "feature_dim": config.bench_feature_dim, "table_megabytes": table.nbytes / 2**20,
        "table_file": str(table.filename), "batch_size": config.batch_size,
        "stand_in_seconds": stand_in_seconds, "dataset_build_seconds": build_seconds, **measured,
    }}}  # fmt: skip
