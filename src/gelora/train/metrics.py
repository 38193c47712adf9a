"""Classification and regression metrics from predictions (scikit-learn and scipy), by name."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef


def _correlation(fn, preds: np.ndarray, labels: np.ndarray) -> float:
    # A constant prediction has no correlation to measure; scipy returns NaN (not valid JSON), report 0 like sklearn's MCC.
    if np.ptp(preds) == 0 or np.ptp(labels) == 0:
        return 0.0
    return float(fn(preds, labels)[0])


METRICS = {
    "accuracy": lambda p, y: float(accuracy_score(y, p)),
    "f1": lambda p, y: float(f1_score(y, p, zero_division=0.0)),
    "macro_f1": lambda p, y: float(f1_score(y, p, average="macro", zero_division=0.0)),
    "matthews_correlation": lambda p, y: float(matthews_corrcoef(y, p)),
    "pearson": lambda p, y: _correlation(stats.pearsonr, p, y),
    "spearman": lambda p, y: _correlation(stats.spearmanr, p, y),
}


def compute_metrics(
    logits: np.ndarray, labels: np.ndarray, metrics: Sequence[str], is_regression: bool
) -> dict[str, float]:
    """Every named metric from raw logits of shape ``(n, num_labels)``: argmax classes, or the one regression output."""
    logits = np.asarray(logits)
    preds = logits[:, 0] if is_regression else logits.argmax(axis=-1)
    labels = np.asarray(labels)
    return {name: METRICS[name](preds, labels) for name in metrics}
