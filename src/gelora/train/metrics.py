"""GLUE metrics from predictions (scikit-learn and scipy), keyed by the names in ``TaskSpec.metrics``."""

from __future__ import annotations

import numpy as np
from scipy import stats
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from gelora.data import TaskSpec


def _correlation(fn, preds: np.ndarray, labels: np.ndarray) -> float:
    # A constant prediction has no correlation to measure; scipy returns NaN (not valid JSON), report 0 like sklearn's MCC.
    if np.ptp(preds) == 0 or np.ptp(labels) == 0:
        return 0.0
    return float(fn(preds, labels)[0])


METRICS = {
    "accuracy": lambda p, y: float(accuracy_score(y, p)),
    "f1": lambda p, y: float(f1_score(y, p, zero_division=0.0)),
    "matthews_correlation": lambda p, y: float(matthews_corrcoef(y, p)),
    "pearson": lambda p, y: _correlation(stats.pearsonr, p, y),
    "spearman": lambda p, y: _correlation(stats.spearmanr, p, y),
}


def predictions(logits: np.ndarray, spec: TaskSpec) -> np.ndarray:
    """Class ids (argmax) for classification, the single output for regression."""
    return logits[:, 0] if spec.is_regression else logits.argmax(axis=-1)


def compute_metrics(logits: np.ndarray, labels: np.ndarray, spec: TaskSpec) -> dict[str, float]:
    """Every metric of the task, from raw logits of shape ``(n, num_labels)``."""
    preds = predictions(np.asarray(logits), spec)
    labels = np.asarray(labels)
    return {name: METRICS[name](preds, labels) for name in spec.metrics}
