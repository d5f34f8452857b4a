"""Keras callbacks that need no TensorFlow (the GPU bench imports them on a machine without it)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import keras
import numpy as np


class EpochTimer(keras.callbacks.Callback):
    """Wall seconds of every epoch, in ``seconds``; and the CPU seconds of this process (every thread) in
    ``cpu_seconds``, which other jobs on a shared machine inflate far less than wall time."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []
        self.cpu_seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()
        self._cpu_start = time.process_time()

    def on_epoch_end(self, epoch, logs=None):
        if logs and "loss" in logs:
            float(logs["loss"])  # waits for the step results: under JAX an epoch can end with device work queued
        self.seconds.append(time.perf_counter() - self._start)
        self.cpu_seconds.append(time.process_time() - self._cpu_start)


class ArrayBackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras' BackupAndRestore (a killed run resumes at the next epoch) with a cheaper backup: the model's weights,
    the optimizer's variables and the epoch go into ONE NumPy archive, written atomically (write-then-rename).

    Keras writes a .weights.h5 through its saving walk over every layer (~0.1 s of Python per epoch for the
    acceleration model on 2 CPU cores, more than the arrays' own write), and with ``double_checkpoint`` first
    copies the previous file, since an in-place write killed halfway leaves a corrupt file. Here a kill leaves the
    previous archive whole, so one file suffices; the epoch is stored inside it, so weights and epoch can never
    disagree. The metadata JSON beside it is written too (after the archive), as Keras' callback does.
    """

    ARCHIVE = "latest.npz"

    def __init__(self, backup_dir):
        super().__init__(backup_dir=str(backup_dir), save_freq="epoch", double_checkpoint=False)
        self._archive_path = Path(backup_dir) / self.ARCHIVE

    def _variables(self) -> tuple[list, list]:
        optimizer = self.model.optimizer
        return list(self.model.weights), (list(optimizer.variables) if optimizer is not None else [])

    def _save_model(self):
        weights, optimizer_variables = self._variables()
        arrays = {f"weight_{i}": keras.ops.convert_to_numpy(v) for i, v in enumerate(weights)}
        arrays.update({f"optimizer_{i}": keras.ops.convert_to_numpy(v) for i, v in enumerate(optimizer_variables)})
        arrays["epoch"] = np.array(self._current_epoch)
        self._archive_path.parent.mkdir(parents=True, exist_ok=True)
        # Write-then-rename, without fsync: a killed process (the case a backup is for) leaves either archive
        # whole, and the two fsyncs per file cost more than the write itself on a busy disk (Keras' own backup
        # does not sync either; the best checkpoint, written through common.io, does).
        for path, write in ((self._archive_path, lambda handle: np.savez(handle, **arrays)),
                            (Path(self._training_metadata_path), lambda handle: handle.write(
                                json.dumps({"epoch": self._current_epoch, "batch": 0}).encode()))):
            temporary = path.with_name(f".{path.name}.tmp")
            with open(temporary, "wb") as handle:
                write(handle)
            os.replace(temporary, path)

    def _load_model(self):
        if not self._archive_path.exists():
            return  # nothing backed up: a fresh run
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)  # its variables must exist to take the saved values
        weights, optimizer_variables = self._variables()
        with np.load(self._archive_path) as archive:
            counts = (sum(k.startswith("weight_") for k in archive.files),
                      sum(k.startswith("optimizer_") for k in archive.files))
            if counts != (len(weights), len(optimizer_variables)):
                raise ValueError(f"{self._archive_path}: holds {counts[0]} weights and {counts[1]} optimizer "
                                 f"variables, the model has {len(weights)} and {len(optimizer_variables)}: a backup "
                                 "of another model (delete the backup folder to start afresh)")
            for i, variable in enumerate(weights):
                variable.assign(archive[f"weight_{i}"])
            for i, variable in enumerate(optimizer_variables):
                variable.assign(archive[f"optimizer_{i}"])
            self.model._initial_epoch = int(archive["epoch"])  # where Keras' own callback puts it


class EpochTensorBoard(keras.callbacks.TensorBoard):
    """Keras' TensorBoard without its per-batch no-op: with ``update_freq="epoch"`` (the default) Keras still calls
    ``summary.scalar`` for every log of every training batch, and with no batch writer pushed each call writes
    nothing (~1 ms per batch on 2 CPU cores). Batch-level work that does write (the graph at the first batch,
    profiling, steps/s, update_freq="batch" or N) goes through Keras as before."""

    def on_train_batch_end(self, batch, logs=None):
        if (self.update_freq == "epoch" and not getattr(self, "_should_write_train_graph", True)
                and not getattr(self, "_should_trace", True) and not self.write_steps_per_second):
            return
        super().on_train_batch_end(batch, logs)


# Keras 3.15's saving walk (every model.save / save_weights) builds reference objects (a Layer, an Operation, an
# Optimizer, ...) to learn which attributes to skip, and means to cache the answer per type, but stores it under
# "saving_attr_skipset_<type>" and looks it up under "saving_attr_skiplist_<type>", so it never finds it: a
# third of the acceleration model's save time (keras/src/saving/saving_lib.py, get_attr_skipset).
_SKIPSET_TYPES = ("Operation", "Layer", "Functional", "Sequential", "Metric", "Optimizer", "Loss")


def fill_keras_saving_cache() -> None:
    """Stores each type's skip set under the name Keras looks it up by (per thread, as Keras' global state is,
    and again after a clear_session); a Keras without that lookup is left as it is."""
    try:
        from keras.src.backend.common import global_state
        from keras.src.saving import saving_lib
    except ImportError:
        return
    for kind in _SKIPSET_TYPES:
        name = f"saving_attr_skiplist_{kind}"
        if global_state.get_global_attribute(name) is None:
            global_state.set_global_attribute(name, saving_lib.get_attr_skipset(kind))
