"""Classification and regression metrics (as GLUE tasks name them) against values worked out by hand."""

import math

import numpy as np
import pytest

from gelora.data import task_spec
from gelora.train.metrics import compute_metrics


def glue(task):
    spec = task_spec(task)
    return spec.metrics, spec.is_regression


def one_hot_logits(classes):
    return np.eye(2)[np.asarray(classes)]


def test_accuracy_and_f1_by_hand():
    # preds 1,1,0,0,1 vs labels 1,0,0,1,1: TP=2, FP=1, FN=1, TN=1 -> acc 3/5, precision 2/3, recall 2/3, F1 2/3
    m = compute_metrics(one_hot_logits([1, 1, 0, 0, 1]), np.array([1, 0, 0, 1, 1]), *glue("glue/mrpc"))
    assert m == pytest.approx({"accuracy": 0.6, "f1": 2 / 3})


def test_matthews_by_hand():
    # Same confusion matrix: MCC = (TP*TN - FP*FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = (2-1)/sqrt(3*3*2*2) = 1/6
    m = compute_metrics(one_hot_logits([1, 1, 0, 0, 1]), np.array([1, 0, 0, 1, 1]), *glue("glue/cola"))
    assert m == pytest.approx({"matthews_correlation": 1 / 6})


def test_pearson_spearman_by_hand():
    # x = 1,2,3,4 and y = 1,3,2,4: centred x = -1.5,-.5,.5,1.5, y = -1.5,.5,-.5,1.5 -> cov 4, var 5 each -> r = 0.8;
    # y is already its own rank vector, so Spearman equals Pearson here.
    logits = np.array([[1.0], [2.0], [3.0], [4.0]])
    m = compute_metrics(logits, np.array([1.0, 3.0, 2.0, 4.0]), *glue("glue/stsb"))
    assert m == pytest.approx({"pearson": 0.8, "spearman": 0.8})


def test_spearman_uses_ranks():
    # A monotone but non-linear relation: Spearman is exactly 1, Pearson is not.
    logits = np.array([[1.0], [2.0], [3.0], [10.0]])
    m = compute_metrics(logits, np.array([1.0, 2.0, 3.0, 4.0]), *glue("glue/stsb"))
    assert m["spearman"] == pytest.approx(1.0)
    assert m["pearson"] < 0.95


def test_constant_predictions_give_zero_correlation_not_nan():
    m = compute_metrics(np.ones((4, 1)), np.array([1.0, 2.0, 3.0, 4.0]), *glue("glue/stsb"))
    assert m == {"pearson": 0.0, "spearman": 0.0}
    assert not any(math.isnan(v) for v in m.values())


def test_accuracy_from_argmax_of_three_classes():
    logits = np.array([[0.1, 2.0, 0.3], [3.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    m = compute_metrics(logits, np.array([1, 0, 2, 2]), *glue("glue/mnli"))
    assert m == {"accuracy": 0.75}
