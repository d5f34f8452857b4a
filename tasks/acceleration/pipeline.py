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
from common.errors import DataError
from common.preprocessor import Preprocessor as BasePreprocessor
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


def encode(raw) -> tf.Tensor:
    """Raw windows in signal units, [B, 2500] or [B, 25, 100] (any rank whose trailing size is 2,500)
    → the model's input [B, 25, 100] float32. Used by the tf.data pipeline and the serving graph."""
    raw = tf.cast(raw, tf.float32)
    flat = tf.reshape(raw, (tf.shape(raw)[0], -1))
    check = tf.debugging.assert_equal(
        tf.shape(flat)[1], WINDOW_SAMPLES,
        message=f"expected windows of {WINDOW_SAMPLES} samples: shape (batch, {WINDOW_SAMPLES}) or "
                f"(batch, {WINDOW_STEPS}, {STEP_SAMPLES})",
    )
    with tf.control_dependencies([check]):  # the check must run before the reshape
        return tf.reshape(flat, (-1, WINDOW_STEPS, STEP_SAMPLES))


def dataset(part: np.ndarray, stride: int, batch_size: int, shuffle: bool, seed: int) -> tf.data.Dataset:
    """Batches of (input [B, 25, 100], target [B, 100]) sliced lazily from the signal tensor.

    Only window start indices are shuffled and stored; each example is sliced from the one copy of
    the signal in the map, so memory stays O(signal) however small the stride.
    """
    signal = tf.constant(part, dtype=tf.float32)
    starts = window_starts(len(part), stride)

    def cut(start):
        example = signal[start : start + EXAMPLE_SAMPLES]
        return example[:WINDOW_SAMPLES], example[WINDOW_SAMPLES:]

    def to_model_input(windows, targets):
        return encode(windows), targets

    data = tf.data.Dataset.from_tensor_slices(starts)
    if shuffle:
        data = data.shuffle(buffer_size=len(starts), seed=seed, reshuffle_each_iteration=True)
    data = data.map(cut, num_parallel_calls=pipelines.AUTOTUNE).batch(batch_size)
    return data.map(to_model_input, num_parallel_calls=pipelines.AUTOTUNE).prefetch(pipelines.AUTOTUNE)


# The ridge baselines' closed-form fit holds its training windows in memory; cap their number.
MAX_RIDGE_WINDOWS = 20_000


class Preprocessor(BasePreprocessor):
    """What the acceleration task fits on the training part of the signal.

    mean / std: the normalisation statistics the model's Rescaling layers are built with;
    ridges: the ridge AR fits (order → weights), the baselines and the linear path's warm start,
    solved once in the train step and reused by evaluate and bench.
    """

    task = "acceleration"

    def __init__(self, mean: float, std: float, ridges: dict):
        self.mean, self.std, self.ridges = float(mean), float(std), dict(ridges)

    @classmethod
    def fit(cls, task, data, workdir) -> "Preprocessor":
        from tasks.acceleration.model import RidgeAutoregression

        config, splits = task.config, data.splits
        mean, std = float(np.mean(splits.train)), float(np.std(splits.train))
        if not std > 0:
            raise DataError(f"{data.path}: the training part of the signal is constant (std 0); nothing to learn")
        ridge_stride = max(config.stride, int(np.ceil(len(splits.train) / MAX_RIDGE_WINDOWS)))
        train, validation = windows(splits.train, ridge_stride), windows(splits.validation)
        # ridge_order is the baseline; the whole window is both a baseline and the warm start of the
        # linear path, so the same 2,501 x 2,501 solve serves both.
        ridges = {order: RidgeAutoregression(order, mean, std).fit(train, validation)
                  for order in sorted({config.ridge_order, WINDOW_SAMPLES})}
        return cls(mean, std, ridges)

    def ridge(self, order: int):
        if order not in self.ridges:
            raise KeyError(f"no ridge of order {order} was fitted (have {sorted(self.ridges)}); retrain")
        return self.ridges[order]

    def export_facts(self) -> dict:
        return {"train_mean": self.mean, "train_std": self.std}

    def get_state(self) -> dict:
        return {"mean": self.mean, "std": self.std, "ridge_orders": sorted(self.ridges)}

    def save_files(self, folder) -> None:
        arrays = {}
        for order, ridge in self.ridges.items():
            arrays[f"weights_{order}"], arrays[f"alphas_{order}"] = ridge.weights, ridge.alphas
        np.savez(folder / "ridges.npz", **arrays)

    @classmethod
    def from_state(cls, state: dict, folder) -> "Preprocessor":
        from tasks.acceleration.model import RidgeAutoregression

        ridges = {}
        with np.load(folder / "ridges.npz") as arrays:
            for order in state["ridge_orders"]:
                ridges[order] = RidgeAutoregression.from_weights(
                    order, state["mean"], state["std"], arrays[f"weights_{order}"], arrays[f"alphas_{order}"])
        return cls(state["mean"], state["std"], ridges)

    encode = staticmethod(encode)
