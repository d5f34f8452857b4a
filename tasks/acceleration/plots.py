"""Pictures of the acceleration task's test predictions (one-step and recursive)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common.io import atomic_path
from tasks.acceleration.config import HORIZON, WINDOW_SAMPLES


def plot_predictions(path: Path, targets, predictions, rolling, recursive_windows: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 1, figsize=(12, 7))
    shown = min(8, len(targets))  # consecutive test windows: their targets tile the signal
    axis = axes[0]
    axis.plot(targets[:shown].reshape(-1), color="black", linewidth=1.0, label="true")
    for name, style in (("lstm", "tab:red"), ("ridge_ar", "tab:blue"), ("persistence", "tab:gray")):
        axis.plot(predictions[name][:shown].reshape(-1), color=style, linewidth=0.8, label=name)
    axis.set_title(f"one-step: next {HORIZON} samples predicted from the previous {WINDOW_SAMPLES} (test split)")
    axis.set_xlabel("test sample")
    axis.set_ylabel("acceleration (signal units)")
    axis.legend(loc="upper right")
    axis = axes[1]
    if rolling is not None:
        context = rolling["context"][-5 * HORIZON :]
        axis.plot(np.arange(-len(context), 0), context, color="gray", linewidth=0.8, label="input (last 500)")
        axis.plot(rolling["truth"], color="black", linewidth=1.0, label="true")
        axis.plot(rolling["generated"], color="tab:red", linewidth=0.8, label="LSTM, recursive")
        axis.set_title(f"recursive: {recursive_windows} windows, each prediction fed back as input")
        axis.legend(loc="upper right")
    axis.set_xlabel("samples after the last input sample")
    figure.tight_layout()
    with atomic_path(path, suffix=".png") as temporary:
        figure.savefig(temporary, dpi=100)
    plt.close(figure)
