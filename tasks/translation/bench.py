"""``run.py translation bench``: batched in-graph beam search vs one sentence at a time in a Python loop.

Uses WORKDIR's best checkpoint and the preprocessor fitted with it (e.g. after ``run.py
translation``); a WORKDIR without a checkpoint is trained first (preprocessor fitted and saved
there too). Both sides decode the same test sentences with the same model and settings, and the
benchmark reports whether their outputs are identical.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from keras import ops

from common import decoding, progress, training
from common.token_ids import END_ID, START_ID
from tasks.translation.model import Translator

logger = logging.getLogger(__name__)


def run(task, data_dir: Path | None, workdir: Path) -> dict[str, Any]:
    config = task.config
    data = task.load_data(data_dir, workdir)
    model, preprocessor, trained_now = training.saved_or_trained(task, data, Path(workdir))
    translator = Translator(model)
    max_length = config.max_target_tokens + 1
    sources = data.test_sources[: config.bench_sentences]
    source_ids = preprocessor.encode(tf.constant(sources)).numpy()
    ids_signature = [tf.TensorSpec([None, None], tf.int32)]
    beam = decoding.traced(lambda ids: translator.beam(ids, max_length, config.beam_width, config.length_penalty)[0],
                  ids_signature)

    beam(source_ids[:2])  # trace once outside the timing
    starts = range(0, len(source_ids), config.decode_batch_size)
    start = time.perf_counter()
    batched = np.concatenate([ops.convert_to_numpy(beam(source_ids[i : i + config.decode_batch_size]))
                              for i in progress.track(starts, len(starts), "Batched beam search", unit="batches")])
    batched_seconds = time.perf_counter() - start

    encode = decoding.traced(translator.encode, ids_signature)
    step = decoding.traced(translator.step)  # one compiled decoder step (under TensorFlow); the loop itself is Python
    python_beam = lambda ids: decoding.python_beam_search(  # noqa: E731
        step, encode(ids), START_ID, END_ID, max_length, config.beam_width, config.length_penalty,
    )
    python_beam(source_ids[:1])  # trace once outside the timing
    start = time.perf_counter()
    looped = np.array([python_beam(source_ids[i : i + 1])[0] for i in progress.track(
        range(len(source_ids)), len(source_ids), "Python-loop beam search", unit="sentences")], dtype=np.int32)
    looped_seconds = time.perf_counter() - start
    figures = {
        "sentences": float(len(sources)),
        "batched_in_graph_sentences_per_second": len(sources) / batched_seconds,
        "python_loop_sentences_per_second": len(sources) / looped_seconds,
        "speedup": looped_seconds / batched_seconds,
        "identical_outputs_fraction": float(np.mean(np.all(batched == looped, axis=1))),
        "beam_width": float(config.beam_width),
    }
    logger.info("Translation bench: %s", figures)
    return {"figures": figures, "model_trained_in_this_run": trained_now, "data": data.info}
