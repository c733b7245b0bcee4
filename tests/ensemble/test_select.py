"""carsearch.ensemble.select: greedy ensemble selection with replacement."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from carsearch.ensemble.predictions import ATTR, encode
from carsearch.ensemble.select import select, select_trials


def _as_probabilities(right: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Two-class probabilities that give each row's true class ``right``."""
    picked = np.where(y == 0, right, 1.0 - right)
    return np.stack([picked, 1.0 - picked], axis=1)


def _complementary() -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Two models, each right on half the rows, whose average is right everywhere, and a
    third that is never right."""
    y = np.array([0, 0, 1, 1, 0, 1])
    right = np.array([0.9, 0.9, 0.9, 0.4, 0.4, 0.4])  # a: right on rows 0-2, wrong on 3-5
    a = _as_probabilities(right, y)
    b = _as_probabilities(right[::-1].copy(), y)  # b: the mirror image
    bad = 1.0 - np.eye(2)[y] * 0.9 - 0.05
    return y, {3: a, 7: b, 9: bad}


@pytest.mark.parametrize("metric", ["accuracy", "macro_f1", "log_loss"])
def test_two_complementary_models_are_averaged(metric: str) -> None:
    y, predictions = _complementary()
    selection = select(predictions, [3, 7, 9], y, metric, n_init=1, n_rounds=10)
    assert selection.weights == {3: 0.5, 7: 0.5}
    assert 9 not in selection.weights
    if metric != "log_loss":
        assert selection.score == 1.0 and selection.scores[0] < 1.0


def test_regression_finds_the_weights_that_cancel_the_biases() -> None:
    y = np.linspace(0.0, 10.0, 50)
    predictions = {0: y + 1.0, 1: y - 2.0, 2: y + 5.0}  # 2/3 x (+1) + 1/3 x (-2) = 0
    selection = select(predictions, [0, 1, 2], y, "rmse", n_init=1, n_rounds=20)
    assert selection.score == pytest.approx(0.0, abs=1e-5)
    weights = selection.weights
    assert weights[0] == pytest.approx(2 / 3) and weights[1] == pytest.approx(1 / 3)


def test_the_chosen_ensemble_never_scores_worse_than_the_best_trial() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 40)
    predictions = {k: rng.dirichlet(np.ones(3), 40) for k in range(6)}
    selection = select(predictions, list(range(6)), y, "log_loss")
    assert selection.score <= selection.scores[0]
    assert sum(selection.weights.values()) == pytest.approx(1.0)
    assert selection.size == sum(count for _, count in selection.counts)


def test_the_init_adds_the_best_in_order_and_the_best_prefix_is_kept() -> None:
    y, predictions = _complementary()
    selection = select(predictions, [9, 3, 7], y, "log_loss", n_init=3, n_rounds=0)
    assert len(selection.scores) == 3  # 9, then 9+3, then 9+3+7: the init, in rank order
    assert selection.scores[0] == pytest.approx(-np.log(0.05), rel=1e-5)
    best = int(np.argmin(selection.scores))
    assert selection.size == best + 1 and selection.score == min(selection.scores)
    assert selection.weights == {9: 1 / 3, 3: 1 / 3, 7: 1 / 3}


def _trial(number: int, value: float, predictions: np.ndarray | None) -> optuna.trial.FrozenTrial:
    attrs = {} if predictions is None else {ATTR: encode(predictions)}
    trial = optuna.trial.create_trial(value=value, user_attrs=attrs)
    trial.number = number
    return trial


def test_select_trials_ranks_by_value_and_skips_trials_without_predictions() -> None:
    y, predictions = _complementary()
    trials = [
        _trial(3, 0.5, predictions[3]),
        _trial(7, 0.6, predictions[7]),
        _trial(9, 0.1, predictions[9]),  # the best value, but its predictions are poor
        _trial(11, 0.05, None),  # an older trial: no predictions
    ]
    selection = select_trials(trials, y, "accuracy", n=3, minimize=True)
    assert selection is not None
    assert selection.scores[0] == 0.0  # the init starts from the best value that kept some
    weights = selection.weights  # the init's 9 cannot be removed, only outweighed
    assert selection.score == 1.0 and weights[3] == weights[7] > weights[9]
    assert 11 not in weights
    only = select_trials(trials, y, "accuracy", n=1, minimize=True)
    assert only is not None and only.weights == {9: 1.0}
    assert select_trials(trials[3:], y, "accuracy", n=3, minimize=True) is None
