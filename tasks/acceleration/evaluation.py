"""Test-split scores of the model and the baselines, pooled over the recordings and per file.

Every column (the LSTM and each baseline) is scored on the same non-overlapping test windows by the
same corpus metrics; ``nmse`` divides by the variance of the targets being scored (the pooled
targets for the pooled block, the file's own for a file's block).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from common.metrics.regression import regression_errors
from common.report import metrics as metrics_block
from tasks.acceleration import model as model_lib
from tasks.acceleration.config import WINDOW_SAMPLES

BASELINES = ("persistence", "mean", "ridge_ar", "ridge_ar_window")
# The baseline each ratio of the model's MSE is taken against (results.json: mse_ratio_vs_NAME).
RATIOS = ("mean", "ridge_ar", "ridge_ar_window", "ridge_ar_window_dense")


def baseline_predictions(inputs: np.ndarray, preprocessor, ridge_order: int) -> dict[str, np.ndarray]:
    predictions = {
        "persistence": model_lib.persistence(inputs),
        "mean": model_lib.constant_mean(inputs, preprocessor.mean),
        "ridge_ar": preprocessor.ridge(ridge_order).predict(inputs),
        # The same ridge on the whole 2,500-sample window: the linear part of the default model
        # (linear_skip) starts from it, so it is the baseline that shows what the LSTM adds.
        "ridge_ar_window": preprocessor.ridge(WINDOW_SAMPLES).predict(inputs),
    }
    if preprocessor.dense is not None:
        # With ridge_fit_stride the linear path starts at this refit instead: what the LSTM adds is then
        # measured against it (mse_ratio_vs_ridge_ar_window_dense), the old baseline stays beside it.
        predictions["ridge_ar_window_dense"] = preprocessor.dense.predict(inputs)
    return predictions


def score(primary: str, predictions: dict[str, np.ndarray], targets: np.ndarray, **extras: Any) -> dict[str, Any]:
    """``common.report.metrics`` block of the model ("lstm") beside every baseline, plus its MSE ratios."""
    target_variance = float(np.var(targets))
    errors = {name: regression_errors(p, targets, target_variance) for name, p in predictions.items()}
    for scores in errors.values():  # every column gets the primary metric, computed the same way
        scores["mse_ratio_vs_persistence"] = scores["mse"] / errors["persistence"]["mse"]
    lstm_mse = errors["lstm"]["mse"]
    ratios = {f"mse_ratio_vs_{name}": lstm_mse / errors[name]["mse"] for name in RATIOS if name in errors}
    baselines = {name: errors[name] for name in predictions if name != "lstm"}
    return metrics_block(primary, errors["lstm"], baselines, **ratios, **extras,
                         test_windows=int(len(targets)), test_target_variance=target_variance)
