"""The Python API: the searches and exports the CLI runs, for notebooks and scripts."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import optuna

from carsearch.bundle.folders import check_out_folder
from carsearch.config import DEFAULT_STORAGE, RunConfig
from carsearch.data.describe import kinds_line, task_line
from carsearch.data.prepare import default_study_name, prepare, same_data
from carsearch.exceptions import StudyError
from carsearch.pipeline import bundle_dir, finish, optimize, reusable_bundle, summarize
from carsearch.search.budget import time_budget
from carsearch.search.space import search_context
from carsearch.search.study import FINGERPRINT_ATTR, open_existing, open_study, stored_config
from carsearch.search.trials import n_finished
from carsearch.storage.faults import storage_faults
from carsearch.storage.seam import open_storage
from carsearch.summary import Summary
from carsearch.training.device import device_label, resolve_device, set_threads
from carsearch.training.refit import Refit
from carsearch.urls import shown_url

logger = logging.getLogger("carsearch")


@dataclass(frozen=True)
class RunResult:
    """What :func:`run` and :func:`export_study` return: study, refit, bundle, summary.

    ``refit`` is ``None`` when :func:`run` found the study's bundle up to date and reused it
    (``summary`` then holds the bundle's test scores).
    """

    study: optuna.Study
    refit: Refit | None
    bundle: Path
    summary: Summary


def run(
    config: RunConfig | None = None,
    *,
    progress: bool | None = None,
    refit: bool = False,
    **options: Any,
) -> RunResult:
    """Search, refit the best configuration, score it on the test split, and export it.

    Args:
        config: the run's configuration; or give its fields as keyword ``options``.
        progress: show a progress bar while trials run; by default only when stderr is a
            terminal.
        refit: refit and export the best trial even when the study's bundle is already
            of that trial, from the same data, in the same folder (``--refit``).

    ``config.n_trials`` is the number of finished (complete or pruned) trials the study
    should hold: a run on an existing study adds only the trials still missing. A study
    whose bundle is already up to date (see ``refit``) keeps it: the run does not refit.

    The call is as quiet as a library: Optuna's own per-trial INFO lines are held back
    while it runs (unless Optuna's verbosity was set to DEBUG), and carsearch's progress goes
    to ``logging.getLogger("carsearch")`` at INFO.

    Raises:
        BundleError: the bundle's folder (``config.out`` or the default one) holds something
            else than a carsearch bundle; checked before the search starts.
        StorageError: the storage failed mid-run (a full disk, a lost server); the finished
            trials are kept and the same call resumes.

    Example:
        >>> import carsearch
        >>> result = carsearch.run(n_trials=3, max_epochs=3, data="cars.csv")  # doctest: +SKIP
        >>> result.summary.test["accuracy"]  # doctest: +SKIP
        0.97
    """
    config = config.replace(**options) if config else RunConfig(**options)
    if config.out:
        check_out_folder(config.out)  # a bad --out fails before any data is read or stored
    if progress is None:
        progress = sys.stderr.isatty()
    with optuna_quiet():
        return _run(config, progress=progress, refit=refit)


def _run(config: RunConfig, *, progress: bool, refit: bool) -> RunResult:
    started, begun = time.perf_counter(), time.monotonic()
    set_threads(config.threads)
    device = resolve_device(config.device)
    prepared = prepare(config)
    requested, config = config.task, config.for_task(prepared.table.task)
    logger.info("%s", kinds_line(prepared.table))
    logger.info("%s", task_line(prepared.table, requested, config.metric))
    storage = open_storage(
        config.storage, trial_budget=config.n_trials, live_writes=config.live_writes
    )
    name = default_study_name(config)
    bundle_dir(config, name)  # the default folder too, before the search
    with storage_faults(config.storage):
        study = open_study(
            config, storage=storage.optuna, name=name, table=prepared.table,
            context=search_context(prepared.search.schema, len(prepared.split.train)),
        )  # fmt: skip
        stored = n_finished(study)
        logger.info(
            "study %r in %s: %d trials stored, %d to run for %d, device %s",
            study.study_name,
            shown_url(config.storage),
            stored,
            max(0, config.n_trials - stored),
            config.n_trials,
            device_label(device),
        )
        budget = time_budget(config, prepared, begun)
        searching = time.monotonic()
        optimize(study, config, prepared, device, progress=progress, budget=budget)
        searched_at = time.monotonic()
        deadline = None if budget is None else budget.refit_deadline
        reused = None if refit else reusable_bundle(study, config, prepared)
        finished = None if reused else finish(study, config, prepared, device, deadline=deadline)
    wall = time.perf_counter() - started
    seconds = {
        "prepare": searching - begun,
        "search": searched_at - searching,
        **(finished.seconds if finished is not None else {}),
    }
    summary = summarize(
        study, config.storage, finished=finished, device=device, wall_seconds=wall, seconds=seconds
    )
    if finished is None:
        assert reused is not None
        return RunResult(study, None, reused, summary)
    return RunResult(study, finished.refit, finished.bundle, summary)


def export_study(
    study_name: str | None = None,
    *,
    storage: str = DEFAULT_STORAGE,
    out: str | Path | None = None,
    data: str | None = None,
    device: str | None = None,
    ensemble: int | None | Literal["stored"] = "stored",
    decision: Literal["tuned", "argmax", "stored"] = "stored",
) -> RunResult:
    """Refit a stored study's best trial exactly as ``carsearch run`` did, and export it.

    Args:
        study_name: the study; may be left out when the storage holds only one.
        storage: the study's storage URL.
        out: the bundle's folder: missing, empty or a bundle, which is replaced (default
            ``<storage folder>/<study>/best``, see :mod:`carsearch.bundle.artifacts`).
        data: the data file, when it has moved since the search (its content must match).
        device: train on this device instead of the stored one (numbers may then differ).
        ensemble: the best trials the exported ensemble is selected from (``None``: the
            best trial alone); by default the study's own setting.
        decision: ``tuned`` (class weights tuned on validation) or ``argmax``; by default
            the study's own setting.

    Raises:
        StudyError: no such study, no completed trial, or data other than the study's.
        BundleError: ``out`` holds something else than a carsearch bundle.
        StorageError: the storage failed while the bundle was recorded on the study.

    Example:
        >>> import carsearch
        >>> carsearch.export_study("tiny", storage="sqlite:///studies.db").bundle  # doctest: +SKIP
        PosixPath('studies/tiny/best')
    """
    with optuna_quiet():
        return _export(
            study_name, storage=storage, out=out, data=data, device=device,
            ensemble=ensemble, decision=decision,
        )  # fmt: skip


def _export(
    study_name: str | None,
    *,
    storage: str,
    out: str | Path | None,
    data: str | None,
    device: str | None,
    ensemble: int | None | Literal["stored"],
    decision: Literal["tuned", "argmax", "stored"] = "stored",
) -> RunResult:
    study = open_existing(study_name, storage)
    changes = {"storage": storage, "data": data, "device": device, "out": out and str(out)}
    config = stored_config(study).replace(**{k: v for k, v in changes.items() if v is not None})
    if ensemble != "stored":
        config = config.replace(ensemble=ensemble)
    if decision != "stored":
        config = config.replace(decision=decision)
    if config.data is not None and not Path(config.data).is_file():
        raise StudyError(
            f"the data file of study {study.study_name!r}, {config.data}, is not here "
            "(searched from another folder?); pass it with --data"
        )
    set_threads(config.threads)
    torch_device = resolve_device(config.device)
    prepared = prepare(config)
    config = config.for_task(prepared.table.task)
    if not same_data(study.user_attrs.get(FINGERPRINT_ATTR), prepared.table, config):
        raise StudyError(
            f"{prepared.table.source} is not the data study {study.study_name!r} was made from "
            "(its fingerprint differs); pass the original file with --data"
        )
    with storage_faults(storage):
        finished = finish(study, config, prepared, torch_device)
    summary = summarize(study, storage, finished=finished, device=torch_device)
    return RunResult(study, finished.refit, finished.bundle, summary)


@contextmanager
def optuna_quiet() -> Iterator[None]:
    """Within: Optuna logs warnings only (not a line per trial), unless its verbosity is
    DEBUG or already above WARNING; the verbosity is restored after."""
    before = optuna.logging.get_verbosity()
    if optuna.logging.DEBUG < before < optuna.logging.WARNING:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)
