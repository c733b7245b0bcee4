"""Scores of predictions, through torchmetrics: a dict of metric name to value."""

from __future__ import annotations

import torch
from torchmetrics.functional import mean_absolute_error, mean_squared_error, r2_score
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_f1_score

from carsearch.config import MINIMIZED

#: Metric name -> value, for one evaluation.
Scores = dict[str, float]

_EPS = 1e-12


def classification_scores(probabilities: torch.Tensor, labels: torch.Tensor) -> Scores:
    """Log loss, accuracy and macro-F1 of ``(rows, classes)`` probabilities.

    Macro-F1 averages over the classes that occur in ``labels`` or the predictions, so a
    class too rare to reach this split does not count as a zero.
    """
    n_classes = probabilities.shape[1]
    picked = probabilities.gather(1, labels.unsqueeze(1)).clamp_min(_EPS)
    accuracy = multiclass_accuracy(
        probabilities, labels, n_classes, average="micro", validate_args=False
    )
    f1 = multiclass_f1_score(probabilities, labels, n_classes, average="macro", validate_args=False)
    return {
        "log_loss": float(-picked.log().mean()),
        "accuracy": float(accuracy),
        "macro_f1": float(f1),
    }


def regression_scores(predictions: torch.Tensor, targets: torch.Tensor) -> Scores:
    """RMSE, MAE and R2 of predictions ``(rows,)`` in the target's units."""
    predictions, targets = predictions.double(), targets.double()
    return {
        "rmse": float(mean_squared_error(predictions, targets, squared=False)),
        "mae": float(mean_absolute_error(predictions, targets)),
        "r2": float(r2_score(predictions, targets)),
    }


def is_better(metric: str, value: float, best: float | None) -> bool:
    """Whether ``value`` improves on ``best`` for ``metric``."""
    if best is None:
        return True
    return value < best if metric in MINIMIZED else value > best
