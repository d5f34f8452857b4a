"""Binary classification metrics over a whole test split: accuracy, ROC AUC, confusion counts.

Corpus-level: every function takes all labels and scores at once and reduces once. ROC AUC is the
Mann-Whitney rank statistic (the probability that a random positive scores above a random negative,
ties counting one half), which equals the area under the exact ROC curve; keras.metrics.AUC instead
approximates the curve with a fixed number of thresholds.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import scipy.stats


def _binary_labels(labels: Sequence[int], name: str = "labels") -> np.ndarray:
    array = np.asarray(labels).reshape(-1)
    if array.size and not np.isin(array, (0, 1)).all():
        bad = array[~np.isin(array, (0, 1))][:5].tolist()
        raise ValueError(f"{name} must be 0 or 1; received values such as {bad}")
    return array.astype(np.int64)


def _same_length(labels: np.ndarray, other: np.ndarray, other_name: str) -> None:
    if labels.shape != other.shape:
        raise ValueError(f"{len(labels)} labels but {len(other)} {other_name}; expected one per example")
    if labels.size == 0:
        raise ValueError("no examples: expected at least one label")


def accuracy(labels: Sequence[int], predicted_labels: Sequence[int]) -> float:
    """Fraction of examples whose predicted label (0/1) equals the label."""
    labels = _binary_labels(labels)
    predicted = _binary_labels(predicted_labels, "predicted labels")
    _same_length(labels, predicted, "predicted labels")
    return float(np.mean(labels == predicted))


def confusion_counts(labels: Sequence[int], predicted_labels: Sequence[int]) -> dict[str, int]:
    """Counts with 1 = positive: true/false positives and negatives."""
    labels = _binary_labels(labels)
    predicted = _binary_labels(predicted_labels, "predicted labels")
    _same_length(labels, predicted, "predicted labels")
    return {
        "true_positive": int(np.sum((labels == 1) & (predicted == 1))),
        "false_positive": int(np.sum((labels == 0) & (predicted == 1))),
        "true_negative": int(np.sum((labels == 0) & (predicted == 0))),
        "false_negative": int(np.sum((labels == 1) & (predicted == 0))),
    }


def roc_auc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """Area under the ROC curve, ties in ``scores`` counted as one half (average ranks)."""
    labels = _binary_labels(labels)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    _same_length(labels, scores, "scores")
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or infinity; expected finite numbers")
    positives = int(labels.sum())
    negatives = int(labels.size - positives)
    if positives == 0 or negatives == 0:
        raise ValueError(f"ROC AUC needs both classes; received {positives} positive and {negatives} negative labels")
    ranks = scipy.stats.rankdata(scores)  # 1-based, ties get their average rank
    rank_sum = float(ranks[labels == 1].sum())
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def binary_report(labels: Sequence[int], probabilities: Sequence[float], threshold: float = 0.5) -> dict[str, Any]:
    """accuracy, roc_auc and confusion counts of probabilities thresholded at ``threshold``."""
    probabilities = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    predicted = (probabilities >= threshold).astype(np.int64)
    labels = _binary_labels(labels)
    both_classes = 0 < labels.sum() < labels.size
    return {
        "accuracy": accuracy(labels, predicted),
        "roc_auc": roc_auc(labels, probabilities) if both_classes else float("nan"),
        "confusion": confusion_counts(labels, predicted),
    }
