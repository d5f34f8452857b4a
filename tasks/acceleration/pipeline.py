"""Signal → time-ordered splits → (window, next 100 samples) pairs → tf.data.

Split by time: [train | validation | test] over the sample axis. Windows are cut inside each part,
so no sample of one split appears in another (not even as input context). Training windows overlap
(``stride``); validation and test windows advance by the horizon, so their targets tile the part
without overlap and every test sample is scored once.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from common import pipelines
from data import DataError
from tasks.acceleration.config import HORIZON, WINDOW_SAMPLES, WINDOW_STEPS, STEP_SAMPLES, Config

EXAMPLE_SAMPLES = WINDOW_SAMPLES + HORIZON  # 2,600 samples: 2,500 of input, 100 of target


@dataclasses.dataclass(frozen=True)
class Splits:
    train: np.ndarray  # float32 [N_train] signal units
    validation: np.ndarray
    test: np.ndarray
    bounds: tuple[tuple[int, int], ...]  # (start, stop) sample indices of each part in the full signal


def split_by_time(signal: np.ndarray, config: Config, source: str = "signal") -> Splits:
    count = len(signal)
    test_start = int(round(count * (1 - config.test_fraction)))
    validation_start = int(round(count * (1 - config.test_fraction - config.validation_fraction)))
    bounds = ((0, validation_start), (validation_start, test_start), (test_start, count))
    for name, (start, stop) in zip(("train", "validation", "test"), bounds):
        if stop - start < EXAMPLE_SAMPLES:
            needed = int(np.ceil(EXAMPLE_SAMPLES / min(1 - config.validation_fraction - config.test_fraction,
                                                       config.validation_fraction, config.test_fraction)))
            raise DataError(
                f"{source}: {count} samples leave {stop - start} for the {name} split; one example needs "
                f"{EXAMPLE_SAMPLES} ({WINDOW_STEPS}x{STEP_SAMPLES} input + {HORIZON} target), so the signal "
                f"must have at least {needed} samples with these split fractions"
            )
    parts = [signal[start:stop].astype(np.float32) for start, stop in bounds]
    return Splits(*parts, bounds=bounds)


def window_starts(length: int, stride: int) -> np.ndarray:
    return np.arange(0, length - EXAMPLE_SAMPLES + 1, stride, dtype=np.int64)


def windows(part: np.ndarray, stride: int = HORIZON) -> tuple[np.ndarray, np.ndarray]:
    """All (input [M, 2500], target [M, 100]) pairs of one split, as arrays (for evaluation)."""
    view = np.lib.stride_tricks.sliding_window_view(part, EXAMPLE_SAMPLES)[::stride]
    return np.ascontiguousarray(view[:, :WINDOW_SAMPLES]), np.ascontiguousarray(view[:, WINDOW_SAMPLES:])


def dataset(part: np.ndarray, stride: int, batch_size: int, shuffle: bool, seed: int) -> tf.data.Dataset:
    """Batches of (input [B, 25, 100], target [B, 100]) sliced lazily from the signal tensor.

    Only window start indices are shuffled and stored; each example is sliced from the one copy of
    the signal in the map, so memory stays O(signal) however small the stride.
    """
    signal = tf.constant(part, dtype=tf.float32)
    starts = window_starts(len(part), stride)

    def cut(start):
        example = signal[start : start + EXAMPLE_SAMPLES]
        return tf.reshape(example[:WINDOW_SAMPLES], (WINDOW_STEPS, STEP_SAMPLES)), example[WINDOW_SAMPLES:]

    data = tf.data.Dataset.from_tensor_slices(starts)
    if shuffle:
        data = data.shuffle(buffer_size=len(starts), seed=seed, reshuffle_each_iteration=True)
    return data.map(cut, num_parallel_calls=pipelines.AUTOTUNE).batch(batch_size).prefetch(pipelines.AUTOTUNE)
