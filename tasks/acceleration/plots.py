"""Pictures of the acceleration task's test predictions (one-step and recursive)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common.io import atomic_path
from tasks.acceleration.config import HORIZON, WINDOW_SAMPLES


def plot_predictions(path: Path, targets, predictions, rolling, recursive_windows: int, model_label: str = "LSTM",
                     model_name: str | None = None) -> None:
    """Writes ``prediction_figure`` to ``path`` (PNG)."""
    figure = prediction_figure(targets, predictions, rolling, recursive_windows, model_label, model_name)
    import matplotlib.pyplot as plt  # after prediction_figure chose the Agg backend

    with atomic_path(path, suffix=".png") as temporary:
        figure.savefig(temporary, dpi=100)
    plt.close(figure)


def prediction_figure(targets, predictions, rolling, recursive_windows: int, model_label: str = "LSTM",
                      model_name: str | None = None):
    """The model's test predictions beside the truth and two baselines, and its recursive generation.

    model_label: the model's legend entry (``predictions["lstm"]`` holds whatever model was saved: the
    warm start when no training epoch beat it); model_name: the longer account shown as the figure's title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 1, figsize=(12, 7))
    figure.suptitle(f"model: {model_name or model_label}")
    shown = min(8, len(targets))  # consecutive test windows: their targets tile the signal
    axis = axes[0]
    axis.plot(targets[:shown].reshape(-1), color="black", linewidth=1.0, label="true")
    for name, style in (("lstm", "tab:red"), ("ridge_ar", "tab:blue"), ("persistence", "tab:gray")):
        label = model_label if name == "lstm" else f"{name} (baseline)"
        axis.plot(predictions[name][:shown].reshape(-1), color=style, linewidth=0.8, label=label)
    axis.set_title(f"one-step: next {HORIZON} samples predicted from the previous {WINDOW_SAMPLES} (test split)")
    axis.set_xlabel("test sample")
    axis.set_ylabel("acceleration (signal units)")
    axis.legend(loc="upper right")
    axis = axes[1]
    if rolling is not None:
        context = rolling["context"][-5 * HORIZON :]
        axis.plot(np.arange(-len(context), 0), context, color="gray", linewidth=0.8, label="input (last 500)")
        axis.plot(rolling["truth"], color="black", linewidth=1.0, label="true")
        axis.plot(rolling["generated"], color="tab:red", linewidth=0.8, label=f"{model_label}, recursive")
        axis.set_title(f"recursive: {recursive_windows} windows, each prediction fed back as input")
        axis.legend(loc="upper right")
    axis.set_xlabel("samples after the last input sample")
    axis.set_ylabel("acceleration (signal units)")
    figure.tight_layout()
    return figure
