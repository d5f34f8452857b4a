"""tf.data helpers: shuffle before batch, AUTOTUNE maps, prefetch."""

from __future__ import annotations

from typing import Any, Callable

import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE


def from_arrays(
    inputs: Any,
    targets: Any,
    batch_size: int,
    shuffle: bool,
    seed: int,
    map_fn: Callable | None = None,
    cache: bool = True,
) -> tf.data.Dataset:
    """Batched dataset of (inputs, targets); ``inputs``/``targets`` may be nested structures of arrays.

    Shuffling happens on examples before batching (full-buffer, reshuffled every epoch) so every
    batch is a fresh random draw; ``map_fn`` runs per example in parallel; the result prefetches.
    """
    dataset = tf.data.Dataset.from_tensor_slices((inputs, targets))
    if cache:
        dataset = dataset.cache()
    if shuffle:
        size = int(dataset.cardinality().numpy())
        dataset = dataset.shuffle(buffer_size=max(size, 1), seed=seed, reshuffle_each_iteration=True)
    if map_fn is not None:
        dataset = dataset.map(map_fn, num_parallel_calls=AUTOTUNE)
    return dataset.batch(batch_size).prefetch(AUTOTUNE)

