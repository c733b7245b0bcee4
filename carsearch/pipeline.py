"""The steps every entry point shares: search, then best trial -> refit -> bundle, summarized.

``carsearch run`` calls :func:`optimize` then :func:`finish`; ``carsearch export`` calls
:func:`finish` on a stored study. Both describe the outcome with :func:`summarize`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import torch

from carsearch.bundle.artifacts import (
    STORAGE_FIELD,
    STUDY_FIELD,
    artifact_dir,
    bundle_path,
    default_bundle_dir,
    publish,
    storage_identity,
)
from carsearch.bundle.files import write_bundle
from carsearch.bundle.folders import check_out_folder
from carsearch.bundle.format import read_manifest
from carsearch.config import RunConfig
from carsearch.data.prepare import Prepared
from carsearch.ensemble.decision import decision_scores
from carsearch.ensemble.select import Selection
from carsearch.ensemble.study import (
    DECISION_ATTR,
    record,
    record_decision,
    recorded,
    select_ensemble,
    tune_decision,
)
from carsearch.exceptions import BundleError
from carsearch.search.budget import TimeBudget
from carsearch.search.objective import BEST_EPOCH_ATTR, make_objective
from carsearch.search.progress import ProgressBar
from carsearch.search.space import replay
from carsearch.search.study import CONFIG_ATTR, FINISHED, best_trial, count_trials
from carsearch.search.trials import log_failure, run_trials
from carsearch.search.workers import run_workers
from carsearch.summary import Summary
from carsearch.training.device import device_label
from carsearch.training.refit import Part, Refit, refit, refit_ensemble, test_outputs
from carsearch.urls import shown_url

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
        return
    if config.jobs > 1:
        if budget is not None:
            left = budget.search_deadline(study, config) - time.monotonic()
            config = config.replace(timeout=max(1.0, min(left, config.timeout or left)))
        run_workers(study, config, prepared, callbacks=(log_failure,))
    else:
        objective = make_objective(config, prepared, device, budget)
        bar = ProgressBar(config.n_trials - n_finished, config.metric) if progress else None
        stopper = None if budget is None else budget.stopper(config)
        callbacks = (log_failure, *(c for c in (bar, stopper) if c is not None))
        try:
            run_trials(
                study,
                objective,
                config,
                callbacks=callbacks,
                ended=None if stopper is None else stopper.done,
            )
        finally:
            if bar is not None:
                bar.close()


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
    out = bundle_dir(config, study.study_name)  # refused before the refit's minutes
    best = best_trial(study)
    logger.info("best trial %d; selecting the ensemble, then refitting", best.number)
    trials = study.get_trials(deepcopy=False)
    selection = select_ensemble(trials, config, prepared)
    record(study, selection, best.number)
    decision = tune_decision(trials, config, prepared, selection, best.number)
    record_decision(study, decision)
    started = time.monotonic()
    final = _refit(study, config, prepared, selection, best, device, deadline)
    final = _decided(final, prepared, decision)
    refitted = time.monotonic()
    provenance = {
        STORAGE_FIELD: storage_identity(config.storage),
        STUDY_FIELD: study.study_name,
        "trial": best.number,
        "metric": config.metric,
        "best_value": best.value,
        "ensemble": selection.to_dict() if selection is not None else None,
        "decision_weights": decision["weights"] if decision is not None else None,
        "data_fingerprint": prepared.table.fingerprint(),
    }
    logger.info("writing the bundle (weights, TorchScript, ONNX) to %s ...", out)
    bundle = write_bundle(out, prepared=prepared, final=final, extra=provenance)
    store = artifact_dir(config.storage)
    logger.info("recording the bundle on the study (artifacts in %s)", store)
    publish(study, bundle, store, trial=best.number)
    logger.info("best model exported to %s", bundle)
    seconds = {"refit": refitted - started, "export": time.monotonic() - refitted}
    return Finished(refit=final, bundle=bundle, seconds=seconds)


def _decided(final: Refit, prepared: Prepared, decision: dict[str, Any] | None) -> Refit:
    """``final`` with its test accuracy and macro-F1 those of the tuned ``decision`` (the
    bundle's confusion matrix is too); plain argmax's stay as ``argmax_accuracy`` and
    ``argmax_macro_f1``."""
    if decision is None:
        return final
    outputs, y = test_outputs(final.model, prepared)
    probabilities, labels = outputs.cpu().numpy(), y.cpu().numpy()
    tuned = decision_scores(probabilities, labels, decision["weights"])
    argmax = {f"argmax_{k}": final.test[k] for k in tuned}
    return dataclasses.replace(final, test={**final.test, **tuned, **argmax})


def _refit(
    study: optuna.Study,
    config: RunConfig,
    prepared: Prepared,
    selection: Selection | None,
    best: optuna.trial.FrozenTrial,
    device: torch.device,
    deadline: float | None,
) -> Refit:
    """The best trial refit alone, or the selected ensemble's configurations refit, by the
    ``deadline`` (``--time-limit``)."""
    schema, n_rows = prepared.final.schema, len(prepared.refit_rows)
    if selection is None or len(selection.counts) < 2:
        recipe = replay(best.params, config, schema, n_rows)
        epochs = int(best.user_attrs[BEST_EPOCH_ATTR])
        return refit(config, prepared, recipe, epochs, device, deadline=deadline)
    parts = []
    for number, weight in selection.weights.items():
        trial = study.get_trials(deepcopy=False)[number]
        recipe = replay(trial.params, config, schema, n_rows)
        parts.append(Part(number, recipe, int(trial.user_attrs[BEST_EPOCH_ATTR]), weight))
    return refit_ensemble(config, prepared, parts, device, deadline=deadline)


def bundle_dir(config: RunConfig, study_name: str) -> Path:
    """The folder the study's bundle goes to: ``config.out``, or the study's default folder.

    Raises:
        BundleError: that folder holds something else than a carsearch bundle.
    """
    out = Path(config.out) if config.out else default_bundle_dir(config.storage, study_name)
    return check_out_folder(out)


def reusable_bundle(study: optuna.Study, config: RunConfig, prepared: Prepared) -> Path | None:
    """The study's bundle if :func:`finish` would write it again as it is: of the best trial,
    from the same data, in the same folder, with the asked number of refits; else ``None``."""
    folder = bundle_path(study)
    if folder is None:
        return None
    try:
        manifest = read_manifest(folder)
    except BundleError:
        return None
    best = best_trial(study).number
    out = Path(config.out) if config.out else default_bundle_dir(config.storage, study.study_name)
    if (
        manifest.get("trial") != best
        or manifest.get("data_fingerprint") != prepared.table.fingerprint()
        or folder.resolve() != out.resolve()
        or config.refit_seeds not in (None, manifest.get("n_members"))
        or (_members(manifest.get("ensemble")), manifest.get("decision_weights"))
        != _chosen(study, config, prepared, best)
    ):
        return None
    logger.info("the bundle in %s is of best trial %d already: kept (--refit refits)", folder, best)
    return folder


def _chosen(study: optuna.Study, config: RunConfig, prepared: Prepared, best: int) -> Any:
    """The members and decision weights :func:`finish` would export now."""
    trials = study.get_trials(deepcopy=False)
    selection = select_ensemble(trials, config, prepared)
    decision = tune_decision(trials, config, prepared, selection, best)
    members = _members(selection.to_dict() if selection is not None else None)
    return members, decision["weights"] if decision is not None else None


def _members(ensemble: Any) -> Any:
    """An ensemble record's members; ``None`` for none (a bundle of the best trial alone)."""
    return ensemble.get("members") if isinstance(ensemble, dict) else None


def summarize(
    study: optuna.Study,
    storage: str,
    *,
    finished: Finished | None = None,
    device: torch.device | None = None,
    wall_seconds: float | None = None,
    seconds: dict[str, float] | None = None,
) -> Summary:
    """The study's summary; without ``finished``, test scores come from its current bundle.

    The summary shows ``storage`` with its password masked.
    """
    counts = count_trials(study)
    best = best_trial(study)
    stored = study.user_attrs.get(CONFIG_ATTR, {})  # carsearch 0.1 studies had no task
    test, refit_seeds, bundle = _outcome(study, best.number, finished)
    return Summary(
        study=study.study_name,
        storage=shown_url(storage),
        best_trial=best.number,
        best_value=float(best.value if best.value is not None else float("nan")),
        best_params=best.params,
        best_epoch=best.user_attrs.get(BEST_EPOCH_ATTR),
        metric=stored.get("metric"),
        task=stored.get("task", "classification") if stored else None,
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
        ensemble=recorded(study, best.number),
        decision=recorded(study, best.number, DECISION_ATTR),
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
