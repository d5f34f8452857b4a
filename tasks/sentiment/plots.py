"""Pictures of the sentiment task's evaluation: ROC curves and confusion matrices, model beside baseline."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from common.io import atomic_path

_COLOURS = ("tab:red", "tab:blue", "tab:green", "tab:purple")  # model first, then the baselines


def roc_curve(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rates, true positive rates) from (0, 0) to (1, 1), one point per distinct score.

    Tied scores move both rates at once (a diagonal step), so the trapezoidal area under the curve is
    the ROC AUC with ties counted one half, as ``common.metrics.classification.roc_auc`` computes it.
    """
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    positives, negatives = int(labels.sum()), int(labels.size - labels.sum())
    if positives == 0 or negatives == 0:
        raise ValueError(f"an ROC curve needs both classes; received {positives} positive and {negatives} negative "
                         "labels")
    order = np.argsort(-scores, kind="stable")
    scores, labels = scores[order], labels[order]
    # Last index of each run of equal scores: the curve's corners, thresholds from high to low.
    ends = np.r_[np.flatnonzero(np.diff(scores)), scores.size - 1]
    true_positives = np.cumsum(labels)[ends]
    false_positives = ends + 1 - true_positives
    return np.r_[0.0, false_positives / negatives], np.r_[0.0, true_positives / positives]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: Path) -> None:
    figure.tight_layout()
    with atomic_path(path, suffix=".png") as temporary:
        figure.savefig(temporary, dpi=100)


def plot_roc(path: Path, labels, probabilities: Mapping[str, np.ndarray], aucs: Mapping[str, float],
             split: str) -> None:
    """ROC curve of each of ``probabilities`` (name → P(positive) per review), its AUC in the legend."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 6))
    axis.plot([0, 1], [0, 1], color="gray", linestyle=":", linewidth=1.0, label="chance (AUC 0.5)")
    labels = np.asarray(labels)
    if 0 < labels.sum() < labels.size:
        for (name, scores), colour in zip(probabilities.items(), _COLOURS):
            false_positive_rate, true_positive_rate = roc_curve(labels, scores)
            axis.plot(false_positive_rate, true_positive_rate, color=colour, linewidth=1.5,
                      label=f"{name} (AUC {aucs[name]:.3f})")
    else:  # a split of one class has no ROC curve (nor AUC); say so instead of failing the run
        axis.text(0.5, 0.5, "only one class in this split: no ROC curve", ha="center", va="center")
    axis.set_xlim(0, 1)
    axis.set_ylim(0, 1.01)
    axis.set_aspect("equal")
    axis.set_xlabel("false positive rate (negative reviews called positive)")
    axis.set_ylabel("true positive rate (positive reviews found)")
    axis.set_title(f"ROC on the {split} split ({labels.size:,} reviews)")
    axis.legend(loc="lower right")
    _save(figure, path)
    plt.close(figure)


def plot_confusion(path: Path, confusions: Mapping[str, Mapping[str, int]], label_names: tuple[str, str],
                   split: str) -> None:
    """One 2×2 matrix per classifier (rows: true label, columns: predicted at P ≥ 0.5), counts written in."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(confusions), figsize=(4.5 * len(confusions), 4.2), squeeze=False)
    for axis, (name, counts) in zip(axes[0], confusions.items()):
        # [true label, predicted label], label id order (negative = 0, positive = 1).
        matrix = np.array([[counts["true_negative"], counts["false_positive"]],
                           [counts["false_negative"], counts["true_positive"]]])
        total = max(int(matrix.sum()), 1)
        axis.imshow(matrix, cmap="Blues", vmin=0, vmax=max(int(matrix.max()), 1))
        for row in range(2):
            for column in range(2):
                count = int(matrix[row, column])
                dark = count > matrix.max() / 2  # white text on the dark cells
                axis.text(column, row, f"{count:,}\n{count / total:.1%}", ha="center", va="center",
                          color="white" if dark else "black", fontsize=12)
        axis.set_xticks([0, 1], labels=list(label_names))
        axis.set_yticks([0, 1], labels=list(label_names))
        axis.set_xlabel("predicted")
        axis.set_ylabel("true")
        axis.set_title(f"{name}: accuracy {np.trace(matrix) / total:.3f}")
    figure.suptitle(f"confusion matrices on the {split} split")
    _save(figure, path)
    plt.close(figure)
