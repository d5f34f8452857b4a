"""Keras callbacks that need no TensorFlow (the GPU bench imports them on a machine without it)."""

from __future__ import annotations

import time

import keras


class EpochTimer(keras.callbacks.Callback):
    """Wall seconds of every epoch, in ``seconds``."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs and "loss" in logs:
            float(logs["loss"])  # waits for the step results: under JAX an epoch can end with device work queued
        self.seconds.append(time.perf_counter() - self._start)
