"""The Python API: the same search the CLI runs, for notebooks and scripts."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import optuna
import torch

from carsearch.config import RunConfig
from carsearch.device import device_label, resolve_device, set_threads
from carsearch.export import export_run
from carsearch.prepare import Prepared, default_study_name, prepare
from carsearch.refit import Refit, refit
from carsearch.storage import make_storage
from carsearch.study import (
    FINISHED,
    best_trial,
    count_trials,
    make_objective,
    open_study,
)
from carsearch.workers import run_trials, run_workers

logger = logging.getLogger("carsearch")


@dataclass(frozen=True)
class RunResult:
    """What :func:`run` returns: the study, the refitted model and the summary."""

    study: optuna.Study
    refit: Refit
    summary: dict[str, Any]


def run(config: RunConfig | None = None, *, progress: bool = False, **options: Any) -> RunResult:
    """Search, refit the best configuration, score it on the test split, and export it.

    Args:
        config: the run's configuration; or give its fields as keyword ``options``.
        progress: show a progress bar while trials run.

    ``config.n_trials`` is the number of finished (complete or pruned) trials the study
    should hold: a run on an existing study adds only the trials still missing.

    Example:
        >>> import carsearch
        >>> result = carsearch.run(n_trials=3, max_epochs=3, data="cars.csv")  # doctest: +SKIP
        >>> result.summary["test"]["accuracy"]  # doctest: +SKIP
        0.97
    """
    config = config.replace(**options) if config else RunConfig(**options)
    started = time.perf_counter()
    set_threads(config.threads)
    device = resolve_device(config.device)
    prepared = prepare(config)
    storage = make_storage(config.storage, trial_budget=config.n_trials)
    study = open_study(
        config,
        storage=storage,
        name=default_study_name(config),
        fingerprint=prepared.table.fingerprint(),
    )
    logger.info(
        "study %r in %s: %d trials wanted, device %s",
        study.study_name,
        config.storage,
        config.n_trials,
        device_label(device),
    )
    optimize(study, config, prepared, device, progress=progress)
    best = best_trial(study)
    final = refit(config, prepared, best.params, int(best.user_attrs["best_epoch"]), device)
    bundle = export_run(study, config, prepared, best, final)
    wall = time.perf_counter() - started
    summary = summarize(study, config, final, device_label(device), wall)
    return RunResult(study, final, {**summary, "bundle": str(bundle)})


def optimize(
    study: optuna.Study,
    config: RunConfig,
    prepared: Prepared,
    device: torch.device,
    *,
    progress: bool = False,
) -> None:
    """Run trials until the study holds ``config.n_trials`` finished ones (or time is up).

    The count is the study's, across every process and machine working on it. With
    ``config.jobs > 1`` the trials run in that many worker processes (:mod:`carsearch.workers`).
    """
    n_finished = len(study.get_trials(deepcopy=False, states=FINISHED))
    if n_finished >= config.n_trials:
        logger.info("study already holds %d finished trials", n_finished)
        return
    if config.jobs > 1:
        run_workers(study, config, prepared, callbacks=(log_failure,))
    else:
        objective = make_objective(config, prepared, device)
        run_trials(study, objective, config, progress=progress, callbacks=(log_failure,))


def log_failure(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """One warning line per failed trial, with the reason the objective recorded."""
    if trial.state == optuna.trial.TrialState.FAIL:
        reason = trial.user_attrs.get("fail_reason", "see --debug for the traceback")
        logger.warning("trial %d failed: %s", trial.number, reason)


def summarize(
    study: optuna.Study, config: RunConfig, final: Refit, device: str, wall_seconds: float
) -> dict[str, Any]:
    """The run's summary, as printed by ``carsearch run`` (and ``--json``)."""
    counts = count_trials(study)
    best = best_trial(study)
    return {
        "study": study.study_name,
        "storage": config.storage,
        "n_trials": sum(counts.values()),
        "n_complete": counts["complete"],
        "n_pruned": counts["pruned"],
        "n_failed": counts["failed"],
        "best_trial": best.number,
        "best_value": best.value,
        "best_params": best.params,
        "best_epoch": best.user_attrs.get("best_epoch"),
        "metric": config.metric,
        "device": device,
        "wall_seconds": round(wall_seconds, 2),
        "refit_seeds": len(final.seeds),
        "test": {
            "accuracy": final.test.accuracy,
            "macro_f1": final.test.macro_f1,
            "log_loss": final.test.log_loss,
        },
    }
