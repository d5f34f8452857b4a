"""Test-split scores of the model and the baselines, pooled over the recordings and per file.

Every column (the LSTM and each baseline) is scored on the same non-overlapping test windows by the
same corpus metrics; ``nmse`` divides by the variance of the targets being scored (the pooled
targets for the pooled block, the file's own for a file's block). Also here: the rolling (recursive)
test, and the names of what was evaluated (the warm start or a trained epoch).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from keras import ops

from common.metrics.regression import regression_errors
from common.report import metrics as metrics_block
from tasks.acceleration import model as model_lib
from tasks.acceleration.config import HORIZON, STEP_SAMPLES, WINDOW_SAMPLES, WINDOW_STEPS

logger = logging.getLogger(__name__)

# Recursive generation is scored from at most this many start points spread over the test split.
MAX_ROLLING_STARTS = 64
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


def rolling_scores(model, test: np.ndarray, steps: int) -> dict[str, Any] | None:
    """Recursive generation (each prediction fed back in) from start points spread over the test signal
    ``test``, scored per generated window beside persistence rolled the same way; None if ``test`` is too short."""
    span = WINDOW_SAMPLES + steps * HORIZON
    if steps < 1 or len(test) < span:
        logger.warning("test split too short for %d recursive windows; skipping the rolling test", steps)
        return None
    count = min(MAX_ROLLING_STARTS, len(test) - span + 1)
    starts = np.unique(np.linspace(0, len(test) - span, num=count).astype(int))
    windows = np.stack([test[s : s + WINDOW_SAMPLES] for s in starts])
    truth = np.stack([test[s + WINDOW_SAMPLES : s + span] for s in starts]).reshape(len(starts), steps, HORIZON)
    # keras.ops, not pipeline.encode (TF): under JAX the forecast loop is traced (the windows are checked above)
    generated = np.asarray(model_lib.rolling_forecast(
        lambda w: model(ops.reshape(w, (-1, WINDOW_STEPS, STEP_SAMPLES)), training=False), windows, steps))
    repeated = np.repeat(windows[:, None, -HORIZON:], steps, axis=1)  # persistence, rolled the same way
    per_step = [float(np.mean((generated[:, k] - truth[:, k]) ** 2)) for k in range(steps)]
    per_step_persistence = [float(np.mean((repeated[:, k] - truth[:, k]) ** 2)) for k in range(steps)]
    return {
        "metrics": {"windows": steps, "starts": int(len(starts)), "lstm_mse_by_window": per_step,
                    "persistence_mse_by_window": per_step_persistence, "lstm_mse": float(np.mean(per_step))},
        "generated": generated[0].reshape(-1),
        "truth": truth[0].reshape(-1),
        "context": windows[0],
    }


def warm_start_description(config) -> str | None:
    """What the model is when no epoch beats its starting point (run.py's closing line); None without one."""
    if not config.linear_skip:
        return None
    if config.ridge_fit_stride:
        return (f"the ridge AR predictor on the whole {WINDOW_SAMPLES:,}-sample window refitted on training windows "
                f"{config.ridge_fit_stride} samples apart (baseline ridge_ar_window_dense)")
    return f"the ridge AR predictor on the whole {WINDOW_SAMPLES:,}-sample window (baseline ridge_ar_window)"


def saved_model_description(config, workdir: Path | None) -> dict[str, Any]:
    """Which model WORKDIR's best checkpoint holds, from its record (checkpoints/best.json): ``model_name``
    (said in logs, prediction.png, results.json and by predict), ``label`` (short, for a legend), ``best_epoch``
    (0 = the warm start, None = no record) and ``model_is_warm_start``."""
    epoch = None
    if workdir is not None:
        try:  # the record common.training writes beside checkpoints/best.keras
            epoch = json.loads((Path(workdir) / "checkpoints" / "best.json").read_text())["epoch"]
        except (OSError, ValueError, KeyError):
            epoch = None
    if epoch == 0 and config.linear_skip:
        dense = f", refitted on training windows {config.ridge_fit_stride} samples apart"
        ridge = f"ridge AR on the {WINDOW_SAMPLES:,}-sample window{dense if config.ridge_fit_stride else ''}"
        return {"model_name": f"warm start: {ridge} (no training epoch beat it)",
                "label": f"warm start ({ridge})", "best_epoch": 0, "model_is_warm_start": True}
    name = f"LSTM (best epoch {epoch})" if epoch is not None else "LSTM"
    return {"model_name": name, "label": name, "best_epoch": epoch, "model_is_warm_start": False}
