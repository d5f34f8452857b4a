"""Corpus-level regression errors: sums accumulated over every test sample, reduced once."""

from __future__ import annotations

import math

import numpy as np


class ErrorAccumulator:
    """MSE / RMSE / MAE over all samples of all windows seen, in the signal's units.

    Accumulating sums (not averaging per-batch means) makes the result independent of batching.
    """

    def __init__(self):
        self.squared = 0.0
        self.absolute = 0.0
        self.count = 0

    def update(self, predictions, targets) -> "ErrorAccumulator":
        predictions = np.asarray(predictions, dtype=np.float64)
        targets = np.asarray(targets, dtype=np.float64)
        if predictions.shape != targets.shape:
            raise ValueError(f"predictions have shape {predictions.shape}, targets {targets.shape}; expected equal")
        difference = predictions - targets
        self.squared += float(np.sum(difference**2))
        self.absolute += float(np.sum(np.abs(difference)))
        self.count += difference.size
        return self

    def result(self, target_variance: float | None = None) -> dict[str, float]:
        if self.count == 0:
            raise ValueError("no samples were accumulated")
        mse = self.squared / self.count
        out = {"mse": mse, "rmse": math.sqrt(mse), "mae": self.absolute / self.count}
        if target_variance is not None:
            # nmse = 1 means "as good as predicting the test mean"; 0 is perfect.
            out["nmse"] = mse / target_variance if target_variance > 0 else math.inf
        return out


def regression_errors(predictions, targets, target_variance: float | None = None) -> dict[str, float]:
    return ErrorAccumulator().update(predictions, targets).result(target_variance)
