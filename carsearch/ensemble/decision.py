"""The class decision of a classifier: per-class weights on its probabilities.

A search that minimises log loss picks calibrated models, and the most probable class of a
calibrated model is rarely a rare class: its macro-F1 suffers. The decision predicts
``argmax(p * w)`` instead, with one positive weight per class tuned on the VALIDATION
predictions of the selected ensemble (never the test rows) by a coordinate search: a few
passes over the classes, each weight tried on a log grid, keeping a change only when it
raises validation macro-F1 without lowering validation accuracy by more than
:data:`TOLERANCE`. When nothing improves every weight stays 1 (plain argmax).

The final model is refit on train + validation, so the weights tuned on the trials'
validation predictions are applied to a refit that has also seen those rows. That is the
standard approach, as scikit-learn's ``TunedThresholdClassifierCV`` with ``refit=True``
tunes its threshold on held-out predictions and then applies it to the estimator refit on
all the data. The probabilities themselves are never changed (``predict_proba`` and the
exported graphs' ``probabilities`` output stay calibrated).

Example:
    >>> import numpy as np
    >>> p = np.array([[0.7, 0.3], [0.6, 0.4], [0.9, 0.1], [0.8, 0.2]])
    >>> [round(w, 2) for w in tune(p, np.array([0, 1, 0, 0]))]
    [1.0, 1.68]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Most validation accuracy a decision may give up for a better macro-F1.
TOLERANCE = 0.002
#: The weights tried for each class: powers of two from 1/32 to 32, in quarter steps.
GRID: tuple[float, ...] = tuple(float(2.0 ** (k / 4)) for k in range(-20, 21))
#: Passes over the classes.
PASSES = 3
#: The smallest macro-F1 gain that counts as an improvement (ties keep the weight).
_MIN_GAIN = 1e-9


def decide(probabilities: np.ndarray, weights: Sequence[float] | None) -> np.ndarray:
    """The class index of each row: ``argmax(probabilities * weights)`` (plain argmax
    without ``weights``)."""
    values = np.asarray(probabilities, dtype=np.float64)
    if weights is not None:
        values = values * np.asarray(weights, dtype=np.float64)
    labels: np.ndarray = values.argmax(axis=1)
    return labels


def confusion(labels: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """The confusion matrix: row ``i``, column ``j`` counts rows of class ``i`` predicted
    as ``j``."""
    y = np.asarray(y, dtype=np.int64)
    both = np.bincount(y * n_classes + labels, minlength=n_classes * n_classes)
    matrix: np.ndarray = both.reshape(n_classes, n_classes)
    return matrix


def scores(labels: np.ndarray, y: np.ndarray, n_classes: int) -> dict[str, float]:
    """Accuracy and macro-F1 of predicted ``labels`` against ``y``; macro-F1 averages
    over the classes that occur in ``y`` or ``labels``, as the training loop's does."""
    confusion_ = confusion(labels, y, n_classes)
    hits = np.diag(confusion_).astype(np.float64)
    actual, predicted = confusion_.sum(axis=1), confusion_.sum(axis=0)
    present = (actual + predicted) > 0
    f1 = 2 * hits[present] / (actual[present] + predicted[present])
    return {
        "accuracy": float(hits.sum() / max(len(y), 1)),
        "macro_f1": float(f1.mean()) if present.any() else 0.0,
    }


def decision_scores(
    probabilities: np.ndarray, y: np.ndarray, weights: Sequence[float] | None
) -> dict[str, float]:
    """Accuracy and macro-F1 of the decision ``weights`` make on ``probabilities``."""
    n_classes = np.asarray(probabilities).shape[1]
    return scores(decide(probabilities, weights), y, n_classes)


def tune(
    probabilities: np.ndarray,
    y: np.ndarray,
    *,
    tolerance: float = TOLERANCE,
    grid: Sequence[float] = GRID,
    passes: int = PASSES,
) -> tuple[float, ...]:
    """Per-class weights that maximise macro-F1 on ``probabilities`` against ``y`` while
    the accuracy stays within ``tolerance`` of plain argmax's; all 1 when none improves.

    Args:
        probabilities: validation class probabilities ``(rows, classes)``.
        y: the validation labels (class indices).
        tolerance: most accuracy given up against plain argmax.
        grid: the values each weight is tried at; among those with the best score, the
            middle one (in log scale), the farthest from where the decision flips.
        passes: passes over the classes.
    """
    n_classes = np.asarray(probabilities).shape[1]
    weights = np.ones(n_classes)
    floor = decision_scores(probabilities, y, None)["accuracy"] - tolerance
    best = decision_scores(probabilities, y, None)["macro_f1"]
    for _ in range(passes):
        changed = False
        for c in range(n_classes):
            found = _best_weight(probabilities, y, weights, c, sorted(grid), floor)
            if found is not None and found[1] > best + _MIN_GAIN:
                weights[c], best, changed = found[0], found[1], True
        if not changed:
            break
    return tuple(float(w) for w in weights / weights.min())


def _best_weight(
    probabilities: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    c: int,
    grid: list[float],
    floor: float,
) -> tuple[float, float] | None:
    """The middle of the ascending ``grid`` values of class ``c``'s weight with the best
    macro-F1 among those whose accuracy stays at ``floor`` or above, and that macro-F1."""
    found: list[tuple[float, float]] = []
    for value in grid:
        trial = weights.copy()
        trial[c] = value
        got = decision_scores(probabilities, y, trial)
        if got["accuracy"] >= floor - 1e-12:
            found.append((value, got["macro_f1"]))
    if not found:
        return None
    top = max(f1 for _, f1 in found)
    tied = [value for value, f1 in found if f1 >= top - _MIN_GAIN]
    return tied[len(tied) // 2], top
