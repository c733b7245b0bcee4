"""The steps every entry point shares: search, then best trial -> refit -> bundle, summarized.

``carsearch run`` calls :func:`optimize` then :func:`finish`; ``carsearch export`` calls
:func:`finish` on a stored study. Both describe the outcome with :func:`summarize`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import optuna
import torch

from carsearch.bundle.artifacts import artifact_dir, bundle_path, default_bundle_dir, publish
from carsearch.bundle.files import write_bundle
from carsearch.bundle.format import read_manifest
from carsearch.config import RunConfig
from carsearch.data.prepare import Prepared
from carsearch.exceptions import BundleError
from carsearch.search.budget import TimeBudget
from carsearch.search.objective import make_objective
from carsearch.search.space import replay
from carsearch.search.study import CONFIG_ATTR, FINISHED, best_trial, count_trials
from carsearch.search.trials import log_failure, run_trials
from carsearch.search.workers import run_workers
from carsearch.summary import Summary
from carsearch.training.device import device_label
from carsearch.training.refit import Refit, refit

logger = logging.getLogger("carsearch")


@dataclass(frozen=True)
class Finished:
    """The refitted best configuration, the folder of its bundle, and the seconds each took
    (``refit``, ``export``)."""

    refit: Refit
    bundle: Path
    seconds: dict[str, float] = field(default_factory=dict)


def optimize(
    study: optuna.Study,
    config: RunConfig,
    prepared: Prepared,
    device: torch.device,
    *,
    progress: bool = False,
    budget: TimeBudget | None = None,
) -> None:
    """Run trials until the study holds ``config.n_trials`` finished ones (or time is up).

    The count is the study's, across every process and machine working on it. With
    ``config.jobs > 1`` the trials run in that many worker processes. A ``budget``
    (``--time-limit``) ends the search in time for the refit and export; worker processes
    only stop starting trials then (as ``--timeout``).
    """
    n_finished = len(study.get_trials(deepcopy=False, states=FINISHED))
    if n_finished >= config.n_trials:
        logger.info("study already holds %d finished trials", n_finished)
        return
    if config.jobs > 1:
        if budget is not None:
            left = budget.search_deadline(study, config) - time.monotonic()
            config = config.replace(timeout=max(1.0, min(left, config.timeout or left)))
        run_workers(study, config, prepared, callbacks=(log_failure,))
    else:
        objective = make_objective(config, prepared, device, budget)
        if budget is None:
            run_trials(study, objective, config, progress=progress, callbacks=(log_failure,))
            return
        stopper = budget.stopper(config)
        callbacks = (log_failure, stopper)
        run_trials(
            study, objective, config, progress=progress, callbacks=callbacks, ended=stopper.done
        )


def finish(
    study: optuna.Study,
    config: RunConfig,
    prepared: Prepared,
    device: torch.device,
    *,
    deadline: float | None = None,
) -> Finished:
    """Refit the study's best trial on train + validation, score it on test, export it.

    The bundle goes to ``config.out`` or the study's default folder, and is recorded on the
    study and uploaded as its artifacts. The refit ends by ``deadline`` (``--time-limit``).
    """
    best = best_trial(study)
    recipe = replay(best.params, config, prepared.final.schema, len(prepared.refit_rows))
    started = time.monotonic()
    epochs = int(best.user_attrs["best_epoch"])
    final = refit(config, prepared, recipe, epochs, device, deadline=deadline)
    refitted = time.monotonic()
    out = Path(config.out) if config.out else default_bundle_dir(config.storage, study.study_name)
    provenance = {
        "study": study.study_name,
        "trial": best.number,
        "metric": config.metric,
        "best_value": best.value,
        "data_fingerprint": prepared.table.fingerprint(),
    }
    bundle = write_bundle(out, prepared=prepared, final=final, extra=provenance)
    publish(study, bundle, artifact_dir(config.storage), trial=best.number)
    logger.info("best model exported to %s", bundle)
    seconds = {"refit": refitted - started, "export": time.monotonic() - refitted}
    return Finished(refit=final, bundle=bundle, seconds=seconds)


def summarize(
    study: optuna.Study,
    storage: str,
    *,
    finished: Finished | None = None,
    device: torch.device | None = None,
    wall_seconds: float | None = None,
    seconds: dict[str, float] | None = None,
) -> Summary:
    """The study's summary; without ``finished``, test scores come from its current bundle."""
    counts = count_trials(study)
    best = best_trial(study)
    test, refit_seeds, bundle = _outcome(study, best.number, finished)
    return Summary(
        study=study.study_name,
        storage=storage,
        best_trial=best.number,
        best_value=float(best.value if best.value is not None else float("nan")),
        best_params=best.params,
        best_epoch=best.user_attrs.get("best_epoch"),
        metric=study.user_attrs.get(CONFIG_ATTR, {}).get("metric"),
        n_trials=counts["complete"] + counts["pruned"] + counts["failed"],
        n_complete=counts["complete"],
        n_pruned=counts["pruned"],
        n_failed=counts["failed"],
        device=device_label(device) if device is not None else None,
        wall_seconds=round(wall_seconds, 2) if wall_seconds is not None else None,
        seconds={k: round(v, 2) for k, v in seconds.items()} if seconds else None,
        refit_seeds=refit_seeds,
        test=test,
        bundle=str(bundle) if bundle is not None else None,
    )


def _outcome(
    study: optuna.Study, best: int, finished: Finished | None
) -> tuple[dict[str, float] | None, int | None, Path | None]:
    """Test scores, number of refits and bundle: of this run, else of the study's bundle."""
    if finished is not None:
        return dict(finished.refit.test), len(finished.refit.seeds), finished.bundle
    folder = bundle_path(study)
    if folder is None:
        return None, None, None
    try:
        manifest = read_manifest(folder)
    except BundleError:
        return None, None, folder
    if manifest.get("trial") != best:
        return None, None, None  # a bundle of an earlier best trial: not this one's scores
    test = {k: v for k, v in manifest["test"].items() if isinstance(v, float)}
    return test, manifest.get("n_members"), folder
