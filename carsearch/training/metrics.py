"""Classification scores from class probabilities, through torchmetrics."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_f1_score

_EPS = 1e-12


@dataclass(frozen=True)
class Scores:
    """Log loss (lower is better), accuracy and macro-F1 of one evaluation."""

    log_loss: float
    accuracy: float
    macro_f1: float

    def get(self, metric: str) -> float:
        return float(getattr(self, metric))

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def score(probabilities: torch.Tensor, labels: torch.Tensor) -> Scores:
    """Scores of ``(rows, classes)`` probabilities against int64 ``labels``."""
    n_classes = probabilities.shape[1]
    picked = probabilities.gather(1, labels.unsqueeze(1)).clamp_min(_EPS)
    return Scores(
        log_loss=float(-picked.log().mean()),
        accuracy=float(
            multiclass_accuracy(
                probabilities, labels, n_classes, average="micro", validate_args=False
            )
        ),
        macro_f1=float(
            multiclass_f1_score(
                probabilities, labels, n_classes, average="macro", validate_args=False
            )
        ),
    )


def is_better(metric: str, value: float, best: float | None) -> bool:
    """Whether ``value`` improves on ``best`` for ``metric``."""
    if best is None:
        return True
    return value < best if metric == "log_loss" else value > best
