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
from carsearch.ensemble.predictions import kept_rows
from carsearch.ensemble.select import Selection, select_trials

logger = logging.getLogger("carsearch")

#: Study user attribute: the ensemble the last ``run`` or ``export`` selected and exported.
ENSEMBLE_ATTR = "carsearch_ensemble"


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


def recorded(study: optuna.Study, best: int) -> dict[str, Any] | None:
    """The ensemble recorded on the study, if it was made with ``best`` as the best trial."""
    value = study.user_attrs.get(ENSEMBLE_ATTR)
    if isinstance(value, dict) and value.get("best_trial") == best:
        return value
    return None
