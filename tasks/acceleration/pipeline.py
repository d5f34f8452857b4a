"""Signal files → time-ordered splits → (window, next 100 samples) pairs → tf.data.

Split by time: [train | validation | test] over the sample axis of each recording (or, with
``blocks``, equal time blocks of which one is test and one validation). A split is a tuple of
segments of consecutive samples, one per recording and per stretch between removed blocks; windows
are cut inside a segment, so no window crosses a file boundary or a gap, and no sample of one
split appears in another (not even as input context). Training windows overlap (``stride``);
validation and test windows advance by the horizon, so their targets tile the part without overlap
and every test sample is scored once.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterator, Sequence, Union

import numpy as np
import tensorflow as tf

from common import pipelines
from common.errors import DataError
from common.preprocessor import Preprocessor as BasePreprocessor
from data.signal import read_signal
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


@dataclasses.dataclass(frozen=True)
class Recording:
    """One signal file cut by time; each split is a tuple of segments of consecutive samples."""

    name: str  # the key of the file's metrics (its file name; the path when two files share a name)
    path: str
    train: tuple[np.ndarray, ...]
    validation: tuple[np.ndarray, ...]
    test: tuple[np.ndarray, ...]
    bounds: dict[str, list[list[int]]]  # split → [start, stop) sample indices of its segments in the file


def split_recording(signal: np.ndarray, config: Config, source: str, name: str | None = None) -> Recording:
    """The fraction split (``blocks=0``: test last) or the blocked split of one recording."""
    name = name or source
    if not config.blocks:
        splits = split_by_time(signal, config, source=source)
        bounds = dict(zip(("train", "validation", "test"), ([list(b)] for b in splits.bounds)))
        return Recording(name, source, (splits.train,), (splits.validation,), (splits.test,), bounds)
    edges = np.round(np.linspace(0, len(signal), config.blocks + 1)).astype(int)
    test = config.test_block % config.blocks  # -1 → the last block
    validation = test - 1 if test > 0 else 1  # beside the test block: the nearest in time
    if np.min(np.diff(edges)) < EXAMPLE_SAMPLES:
        raise DataError(f"{source}: {len(signal)} samples cut into blocks={config.blocks} leave blocks of "
                        f"{int(np.min(np.diff(edges)))}; one example needs {EXAMPLE_SAMPLES}, so the signal must have "
                        f"at least {config.blocks * EXAMPLE_SAMPLES} samples (or use fewer blocks)")
    spans: dict[str, list[list[int]]] = {"train": [], "validation": [], "test": []}
    for index in range(config.blocks):
        split = "test" if index == test else "validation" if index == validation else "train"
        start, stop = int(edges[index]), int(edges[index + 1])
        if split == "train" and spans["train"] and spans["train"][-1][1] == start:
            spans["train"][-1][1] = stop  # consecutive training blocks are one segment
        else:
            spans[split].append([start, stop])
    parts = {split: tuple(signal[a:b].astype(np.float32) for a, b in spans[split]) for split in spans}
    if not count_windows(parts["train"], config.stride):
        raise DataError(f"{source}: no training segment of blocks={config.blocks} holds one {EXAMPLE_SAMPLES}-sample "
                        "example; use fewer blocks")
    return Recording(name, source, parts["train"], parts["validation"], parts["test"], spans)


def read_recordings(paths: Sequence[Path], config: Config, key: str | None) -> list[Recording]:
    """Reads and splits every file; a file's metrics key is its name (its path if two names clash)."""
    names = [p.name for p in paths]
    recordings = []
    for path, name in zip(paths, names):
        signal = read_signal(path, key=key, column=config.column)
        unique = name if names.count(name) == 1 else str(path)
        recordings.append(split_recording(signal, config, source=str(path), name=unique))
    return recordings


Part = Union[np.ndarray, Sequence[np.ndarray]]  # one signal part, or segments that windows must not cross


def segments(part: Part) -> tuple[np.ndarray, ...]:
    return tuple(part) if isinstance(part, (list, tuple)) else (part,)


def window_starts(length: int, stride: int) -> np.ndarray:
    return np.arange(0, length - EXAMPLE_SAMPLES + 1, stride, dtype=np.int64)


def count_windows(part: Part, stride: int) -> int:
    return int(sum(len(window_starts(len(segment), stride)) for segment in segments(part)))


def windows(part: Part, stride: int = HORIZON) -> tuple[np.ndarray, np.ndarray]:
    """All (input [M, 2500], target [M, 100]) pairs of one split, as arrays (for evaluation); each
    segment is windowed on its own, from its first sample."""
    pairs = list(window_batches(part, stride))
    if not pairs:
        return np.zeros((0, WINDOW_SAMPLES), np.float32), np.zeros((0, HORIZON), np.float32)
    inputs, targets = zip(*pairs)
    return np.ascontiguousarray(np.concatenate(inputs)), np.ascontiguousarray(np.concatenate(targets))


def window_batches(part: Part, stride: int, batch: int = 4096) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The pairs of ``windows(part, stride)`` in batches of at most ``batch``, without holding them all."""
    for segment in segments(part):
        if len(segment) < EXAMPLE_SAMPLES:
            continue  # a training stretch between removed blocks too short for one example
        view = np.lib.stride_tricks.sliding_window_view(segment, EXAMPLE_SAMPLES)[::stride]
        for first in range(0, len(view), batch):
            chunk = view[first : first + batch]
            yield chunk[:, :WINDOW_SAMPLES], chunk[:, WINDOW_SAMPLES:]


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


def dataset(part: Part, stride: int, batch_size: int, shuffle: bool, seed: int) -> tf.data.Dataset:
    """Batches of (input [B, 25, 100], target [B, 100]) sliced lazily from the signal tensor.

    Only window start indices are shuffled and stored; each example is sliced from the one copy of
    the signal in the map, so memory stays O(signal) however small the stride. Segments are laid end
    to end in that copy and each one's starts stop an example short of its end: no window crosses.
    """
    parts = segments(part)
    signal = tf.constant(np.concatenate(parts) if len(parts) > 1 else parts[0], dtype=tf.float32)
    offsets = np.cumsum([0] + [len(segment) for segment in parts[:-1]])
    starts = np.concatenate([offset + window_starts(len(segment), stride) for offset, segment in zip(offsets, parts)])

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
    """What the acceleration task fits on the training part of the signal(s).

    mean / std: the normalisation statistics the model's Rescaling layers are built with (pooled over
    every training segment of every file); ridges: the ridge AR fits (order → weights), the baselines
    and the linear path's warm start, solved once in the train step and reused by evaluate and bench;
    dense: with ``ridge_fit_stride`` the 2,500-sample ridge refitted on all windows that far apart.
    """

    task = "acceleration"

    def __init__(self, mean: float, std: float, ridges: dict, dense=None, dense_stride: int = 0):
        self.mean, self.std, self.ridges = float(mean), float(std), dict(ridges)
        self.dense, self.dense_stride = dense, int(dense_stride)

    @classmethod
    def fit(cls, task, data, workdir) -> "Preprocessor":
        from tasks.acceleration.model import RidgeAutoregression

        config = task.config
        train_parts = data.part("train")
        values = np.concatenate(train_parts)
        mean, std = float(np.mean(values)), float(np.std(values))
        if not std > 0:
            raise DataError(f"{data.path}: the training part of the signal is constant (std 0); nothing to learn")
        ridge_stride = max(config.ridge_baseline_stride or config.stride, int(np.ceil(len(values) / MAX_RIDGE_WINDOWS)))
        train, validation = windows(train_parts, ridge_stride), windows(data.part("validation"))
        # ridge_order is the baseline; the whole window is both a baseline and the warm start of the
        # linear path, so the same 2,501 x 2,501 solve serves both.
        ridges = {order: RidgeAutoregression(order, mean, std).fit(train, validation)
                  for order in sorted({config.ridge_order, WINDOW_SAMPLES})}
        dense = None
        if config.ridge_fit_stride:
            # Streamed: at stride 5 the pooled CWRU files give ~85,000 windows (1.7 GB as one array).
            dense = RidgeAutoregression(WINDOW_SAMPLES, mean, std).fit_streamed(
                window_batches(train_parts, config.ridge_fit_stride), validation)
        return cls(mean, std, ridges, dense, config.ridge_fit_stride)

    def ridge(self, order: int):
        if order not in self.ridges:
            raise KeyError(f"no ridge of order {order} was fitted (have {sorted(self.ridges)}); retrain")
        return self.ridges[order]

    def warm_start_ridge(self):
        """The ridge the linear path starts at: the dense refit when there is one, else the baseline."""
        return self.dense if self.dense is not None else self.ridge(WINDOW_SAMPLES)

    def export_facts(self) -> dict:
        return {"train_mean": self.mean, "train_std": self.std}

    def get_state(self) -> dict:
        state = {"mean": self.mean, "std": self.std, "ridge_orders": sorted(self.ridges)}
        if self.dense is not None:
            state["dense_stride"] = self.dense_stride
        return state

    def save_files(self, folder) -> None:
        arrays = {}
        for order, ridge in self.ridges.items():
            arrays[f"weights_{order}"], arrays[f"alphas_{order}"] = ridge.weights, ridge.alphas
        if self.dense is not None:
            arrays["weights_dense"], arrays["alphas_dense"] = self.dense.weights, self.dense.alphas
        np.savez(folder / "ridges.npz", **arrays)

    @classmethod
    def from_state(cls, state: dict, folder) -> "Preprocessor":
        from tasks.acceleration.model import RidgeAutoregression

        ridges, dense = {}, None
        with np.load(folder / "ridges.npz") as arrays:
            for order in state["ridge_orders"]:
                ridges[order] = RidgeAutoregression.from_weights(
                    order, state["mean"], state["std"], arrays[f"weights_{order}"], arrays[f"alphas_{order}"])
            if state.get("dense_stride"):
                dense = RidgeAutoregression.from_weights(
                    WINDOW_SAMPLES, state["mean"], state["std"], arrays["weights_dense"], arrays["alphas_dense"])
        return cls(state["mean"], state["std"], ridges, dense, state.get("dense_stride", 0))

    encode = staticmethod(encode)
