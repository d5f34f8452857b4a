"""``run.py language_model bench``: training tokens/s, and generation batched in-graph vs one token at a time.

Uses WORKDIR's best checkpoint and the preprocessor fitted with it (e.g. after ``run.py language_model``);
a WORKDIR without a checkpoint is trained first. Training: ``bench_train_steps`` steps of a freshly built
model of the same config on the training windows (after one warm-up step). Generation: greedy
continuations of ``bench_prompts`` test prompts, ``sample_tokens`` tokens each, (a) all prompts in one
call of the in-graph loop (the ``generate`` endpoint's graph), (b) one prompt at a time with a Python
loop calling a compiled one-token step; the report says whether both produced the same tokens.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from common import training
from tasks.language_model import model as model_lib


def run(task, data_dir: Path | None, workdir: Path) -> dict[str, Any]:
    config = task.config
    data = task.load_data(data_dir, workdir)
    model, preprocessor, trained_now = training.saved_or_trained(task, data, Path(workdir))

    # Training throughput of a fresh model (the trained one stays as it is).
    fresh = task.build_model(data, preprocessor)
    train, _ = task.datasets(data, preprocessor)
    batches = list(itertools.islice(itertools.cycle(train), config.bench_train_steps + 1))
    fresh.train_on_batch(*batches[0])  # traces the step outside the timing
    start = time.perf_counter()
    for inputs, targets in batches[1:]:
        fresh.train_on_batch(inputs, targets)
    train_seconds = time.perf_counter() - start
    train_tokens = sum(int(np.count_nonzero(targets)) for _, targets in batches[1:])

    # Generation: one batched in-graph call vs a Python loop over prompts and tokens.
    generator = model_lib.Generator(model)
    count = config.effective_sample_tokens
    prompts = (data.test * config.bench_prompts)[: config.bench_prompts]
    prompts = [" ".join(line.split()[:3]) for line in prompts]
    ids, lengths = preprocessor.encode_prompts(tf.constant(prompts))

    signature = [tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None], tf.int32)]

    @tf.function(input_signature=signature)
    def batched(ids, lengths):
        return generator.generate(ids, lengths, count, 0.0, 0)

    batched(ids[:1], lengths[:1])  # traced outside the timing
    start = time.perf_counter()
    together = batched(ids, lengths).numpy()
    batched_seconds = time.perf_counter() - start

    prime = tf.function(generator.prime, input_signature=signature)
    step = tf.function(generator.step)

    def one_prompt(row):
        logits, states = prime(ids[row: row + 1, : lengths[row]], lengths[row: row + 1])
        tokens = []
        for _ in range(count):
            token = int(np.argmax(logits.numpy()[0]))
            tokens.append(token)
            logits, states = step(tf.constant([token], tf.int32), states)
        return tokens

    one_prompt(0)
    start = time.perf_counter()
    looped = np.array([one_prompt(row) for row in range(len(prompts))], np.int32)
    looped_seconds = time.perf_counter() - start
    generated = count * len(prompts)
    figures = {
        "train_tokens_per_second": train_tokens / train_seconds,
        "train_steps": float(config.bench_train_steps),
        "generated_tokens": float(generated),
        "batched_in_graph_tokens_per_second": generated / batched_seconds,
        "python_loop_tokens_per_second": generated / looped_seconds,
        "speedup": looped_seconds / batched_seconds,
        "identical_outputs_fraction": float(np.mean(np.all(together == looped, axis=1))),
    }
    return {"figures": figures, "model_trained_in_this_run": trained_now, "data": data.info}
