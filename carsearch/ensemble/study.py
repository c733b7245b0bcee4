"""The ensemble of a study: selection from its stored trials, recorded on the study.

Selection is a pure function of the stored trials' values and predictions and of the
validation labels, so a resumed study, a ``--jobs`` study and one worker's study of the same
trials select the same ensemble; ``export`` selects again from what is stored.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import optuna

from carsearch.config import MINIMIZED, RunConfig
from carsearch.data.prepare import Prepared
from carsearch.data.schema import CLASSIFICATION
from carsearch.ensemble.decision import decision_scores, tune
from carsearch.ensemble.predictions import ATTR, decode, kept_rows
from carsearch.ensemble.select import Selection, select_trials

logger = logging.getLogger("carsearch")

#: Study user attribute: the ensemble the last ``run`` or ``export`` selected and exported.
ENSEMBLE_ATTR = "carsearch_ensemble"
#: Study user attribute: the class decision the last ``run`` or ``export`` tuned.
DECISION_ATTR = "carsearch_decision"


def validation_targets(prepared: Prepared, seed: int) -> np.ndarray:
    """The labels (or targets) of the validation rows whose predictions trials keep."""
    y: np.ndarray = prepared.search.y[prepared.split.val]
    kept: np.ndarray = y[kept_rows(len(y), prepared.search.schema.n_outputs, seed)]
    return kept


def select_ensemble(
    trials: list[optuna.trial.FrozenTrial], config: RunConfig, prepared: Prepared
) -> Selection | None:
    """The ensemble of ``config.ensemble`` best ``trials``; ``None`` when ensembles are off
    or no trial kept validation predictions (a study of an older carsearch)."""
    n = config.ensemble
    if n is None:
        return None
    config = config.for_task(prepared.table.task)
    selection = select_trials(
        trials,
        validation_targets(prepared, config.seed),
        config.metric,
        n=n,
        minimize=config.metric in MINIMIZED,
    )
    if selection is None:
        logger.info("no trial kept validation predictions: the best trial alone is exported")
    return selection


def record(study: optuna.Study, selection: Selection | None, best: int) -> None:
    """Store ``selection`` (with the best single ``best`` trial it was made with) on the
    study, for ``best`` and the report; ``None`` stores that none was made."""
    value: dict[str, Any] | None = None
    if selection is not None:
        value = {**selection.to_dict(), "best_trial": best}
    study.set_user_attr(ENSEMBLE_ATTR, value)


def recorded(study: optuna.Study, best: int, attr: str = ENSEMBLE_ATTR) -> dict[str, Any] | None:
    """The ensemble (or with ``attr`` :data:`DECISION_ATTR`, the decision) recorded on the
    study, if it was made with ``best`` as the best trial."""
    value = study.user_attrs.get(attr)
    if isinstance(value, dict) and value.get("best_trial") == best:
        return value
    return None


def validation_probabilities(
    trials: list[optuna.trial.FrozenTrial], selection: Selection | None, best: int
) -> np.ndarray | None:
    """The exported model's validation probabilities: the selection's weighted average of
    its members' stored predictions, or the best trial's; ``None`` when not stored."""
    weights = selection.weights if selection is not None else {best: 1.0}
    by_number = {t.number: t for t in trials}
    if any(ATTR not in by_number[n].user_attrs for n in weights):
        return None
    first = decode(by_number[next(iter(weights))].user_attrs[ATTR])
    total = np.zeros(first.shape, dtype=np.float64)
    for number, weight in weights.items():
        prediction = decode(by_number[number].user_attrs[ATTR])
        if prediction.shape != total.shape:
            return None
        total += weight * prediction
    return total


def tune_decision(
    trials: list[optuna.trial.FrozenTrial],
    config: RunConfig,
    prepared: Prepared,
    selection: Selection | None,
    best: int,
) -> dict[str, Any] | None:
    """The class decision of the exported model (:mod:`~carsearch.ensemble.decision`),
    tuned on its validation probabilities: a record of ``weights`` (one per class, in
    ``classes`` order) and the validation scores of plain argmax and of the weights.
    ``None`` for a regression, with ``--decision argmax``, or when no predictions are kept.
    """
    schema = prepared.search.schema
    if schema.task != CLASSIFICATION or config.decision == "argmax":
        return None
    probabilities = validation_probabilities(trials, selection, best)
    y = validation_targets(prepared, config.seed)
    if probabilities is None or probabilities.shape != (len(y), len(schema.classes)):
        logger.info("no validation predictions kept: the decision stays plain argmax")
        return None
    weights = tune(probabilities, y)
    return {
        "best_trial": best,
        "classes": list(schema.classes),
        "weights": list(weights),
        "val_argmax": decision_scores(probabilities, y, None),
        "val_tuned": decision_scores(probabilities, y, weights),
    }


def record_decision(study: optuna.Study, decision: dict[str, Any] | None) -> None:
    """Store the tuned ``decision`` (``None``: plain argmax) on the study."""
    study.set_user_attr(DECISION_ATTR, decision)
