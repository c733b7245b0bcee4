"""Greedy ensemble selection with replacement (Caruana et al., ICML 2004).

Over the validation predictions of a study's best trials: start from the best trial, add
the next best few in order (sorted initialisation), then for a bounded number of rounds add
whichever trial (again, with replacement) most improves the weighted average's validation
score. The ensemble kept is the prefix of these additions with the best validation score,
so it is never worse on validation than the best trial alone. A trial added ``c`` times
of ``n`` additions weighs ``c / n``. As auto-sklearn and AutoGluon's ``WeightedEnsemble``.

Example:
    >>> import numpy as np
    >>> y = np.array([0, 1])
    >>> a = np.array([[0.9, 0.1], [0.6, 0.4]])  # right on row 0 only
    >>> b = np.array([[0.4, 0.6], [0.1, 0.9]])  # right on row 1 only
    >>> select({1: a, 2: b}, [1, 2], y, "accuracy", n_init=1).weights
    {1: 0.5, 2: 0.5}
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import torch

from carsearch.ensemble.predictions import ATTR, decode
from carsearch.training.metrics import classification_scores, is_better, regression_scores

#: Trials added in order before the greedy rounds (BENCHMARKS.md: 1, 3, 5 on Car Evaluation).
N_INIT = 3
#: Greedy rounds after the initialisation: bounds how finely a small split is fitted.
N_ROUNDS = 25


@dataclass(frozen=True)
class Selection:
    """The ensemble chosen: each member trial with its count, and the validation score of
    each ensemble size (``scores[k - 1]`` after ``k`` additions; the chosen size is
    ``size``)."""

    counts: tuple[tuple[int, int], ...]
    scores: tuple[float, ...]
    size: int
    metric: str

    @property
    def weights(self) -> dict[int, float]:
        """Trial number -> weight (its count over the ensemble's size)."""
        return {trial: count / self.size for trial, count in self.counts}

    @property
    def score(self) -> float:
        """The chosen ensemble's validation score."""
        return self.scores[self.size - 1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "members": [
                {"trial": trial, "count": count, "weight": count / self.size}
                for trial, count in self.counts
            ],
            "size": self.size,
            "val_score": self.score,
            "val_scores": list(self.scores),
        }


def score(predictions: np.ndarray, y: np.ndarray, metric: str) -> float:
    """``metric`` of ``predictions`` (class probabilities ``(rows, classes)`` or numbers
    ``(rows,)``) against ``y``, as the training loop scores it."""
    got = torch.as_tensor(predictions, dtype=torch.float32)
    if got.dim() == 2:
        return classification_scores(got, torch.as_tensor(y, dtype=torch.int64))[metric]
    return regression_scores(got, torch.as_tensor(y))[metric]


def select(
    predictions: Mapping[int, np.ndarray],
    ranked: Sequence[int],
    y: np.ndarray,
    metric: str,
    *,
    n_init: int = N_INIT,
    n_rounds: int = N_ROUNDS,
) -> Selection:
    """Greedy selection with replacement among ``ranked`` (trial numbers, best first).

    Args:
        predictions: each trial's validation predictions, rows in ``y``'s order.
        ranked: the candidate trials, best value first.
        y: the validation labels or targets.
        metric: the score to optimise (a key of the training loop's scores).
        n_init: trials added in rank order first.
        n_rounds: greedy additions after them.
    """
    chosen: list[int] = list(ranked[: max(1, min(n_init, len(ranked)))])
    total = np.zeros_like(predictions[ranked[0]], dtype=np.float64)
    scores: list[float] = []
    for trial in chosen:
        total += predictions[trial]
        scores.append(score(total / (len(scores) + 1), y, metric))
    for _ in range(n_rounds):
        size = len(chosen) + 1
        best: tuple[float, int] | None = None
        for trial in ranked:
            value = score((total + predictions[trial]) / size, y, metric)
            if best is None or is_better(metric, value, best[0]):
                best = (value, trial)
        assert best is not None
        chosen.append(best[1])
        total += predictions[best[1]]
        scores.append(best[0])
    return _best_prefix(chosen, scores, metric)


def _best_prefix(chosen: list[int], scores: list[float], metric: str) -> Selection:
    """The prefix of ``chosen`` with the best score (the earliest among equals)."""
    size = 1
    for k, value in enumerate(scores, start=1):
        if is_better(metric, value, scores[size - 1]):
            size = k
    counts = Counter(chosen[:size])
    order = sorted(counts, key=lambda trial: (-counts[trial], chosen.index(trial)))
    return Selection(tuple((t, counts[t]) for t in order), tuple(scores), size, metric)


def candidates(
    trials: Sequence[optuna.trial.FrozenTrial], n: int, *, minimize: bool
) -> list[optuna.trial.FrozenTrial]:
    """The ``n`` best completed trials that kept validation predictions, best first
    (ties by trial number, so every reader of a study ranks them alike)."""
    complete = optuna.trial.TrialState.COMPLETE
    kept = [t for t in trials if t.state == complete and ATTR in t.user_attrs]
    sign = 1.0 if minimize else -1.0
    kept.sort(key=lambda t: (sign * float(t.value or 0.0), t.number))
    return kept[:n]


def select_trials(
    trials: Sequence[optuna.trial.FrozenTrial],
    y: np.ndarray,
    metric: str,
    *,
    n: int,
    minimize: bool,
) -> Selection | None:
    """:func:`select` over the ``n`` best of ``trials`` (their stored predictions against
    the kept validation rows' ``y``); ``None`` when no trial kept predictions."""
    ranked = candidates(trials, n, minimize=minimize)
    if not ranked:
        return None
    predictions = {t.number: decode(t.user_attrs[ATTR]) for t in ranked}
    usable = [t.number for t in ranked if predictions[t.number].shape[:1] == y.shape]
    if not usable:
        return None
    return select(predictions, usable, y, metric)
