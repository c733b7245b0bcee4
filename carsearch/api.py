"""The Python API: the searches and exports the CLI runs, for notebooks and scripts."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from carsearch.config import DEFAULT_STORAGE, RunConfig
from carsearch.data.describe import kinds_line
from carsearch.data.prepare import default_study_name, prepare
from carsearch.exceptions import StudyError
from carsearch.pipeline import finish, optimize, summarize
from carsearch.search.budget import time_budget
from carsearch.search.faults import storage_faults
from carsearch.search.storage import make_storage, trial_storage
from carsearch.search.study import FINGERPRINT_ATTR, open_existing, open_study, stored_config
from carsearch.summary import Summary
from carsearch.training.device import device_label, resolve_device, set_threads
from carsearch.training.refit import Refit

logger = logging.getLogger("carsearch")


@dataclass(frozen=True)
class RunResult:
    """What :func:`run` and :func:`export_study` return: study, refit, bundle, summary."""

    study: optuna.Study
    refit: Refit
    bundle: Path
    summary: Summary


def run(config: RunConfig | None = None, *, progress: bool = False, **options: Any) -> RunResult:
    """Search, refit the best configuration, score it on the test split, and export it.

    Args:
        config: the run's configuration; or give its fields as keyword ``options``.
        progress: show a progress bar while trials run.

    ``config.n_trials`` is the number of finished (complete or pruned) trials the study
    should hold: a run on an existing study adds only the trials still missing.

    Raises:
        StorageError: the storage failed mid-run (a full disk, a lost server); the finished
            trials are kept and the same call resumes.

    Example:
        >>> import carsearch
        >>> result = carsearch.run(n_trials=3, max_epochs=3, data="cars.csv")  # doctest: +SKIP
        >>> result.summary.test["accuracy"]  # doctest: +SKIP
        0.97
    """
    config = config.replace(**options) if config else RunConfig(**options)
    started, begun = time.perf_counter(), time.monotonic()
    set_threads(config.threads)
    device = resolve_device(config.device)
    prepared = prepare(config)
    config = config.for_task(prepared.table.task)
    logger.info("%s", kinds_line(prepared.table))
    storage = make_storage(config.storage, trial_budget=config.n_trials)
    name = default_study_name(config)
    searched = trial_storage(storage, live_writes=config.live_writes)
    with storage_faults(config.storage):
        study = open_study(config, storage=searched, name=name, table=prepared.table)
        logger.info(
            "study %r in %s: %d trials wanted, device %s",
            study.study_name,
            config.storage,
            config.n_trials,
            device_label(device),
        )
        budget = time_budget(config, prepared, begun)
        searching = time.monotonic()
        optimize(study, config, prepared, device, progress=progress, budget=budget)
        searched_at = time.monotonic()
        deadline = None if budget is None else budget.refit_deadline
        finished = finish(study, config, prepared, device, deadline=deadline)
    wall = time.perf_counter() - started
    seconds = {"prepare": searching - begun, "search": searched_at - searching, **finished.seconds}
    summary = summarize(
        study, config.storage, finished=finished, device=device, wall_seconds=wall, seconds=seconds
    )
    return RunResult(study, finished.refit, finished.bundle, summary)


def export_study(
    study_name: str | None = None,
    *,
    storage: str = DEFAULT_STORAGE,
    out: str | Path | None = None,
    data: str | None = None,
    device: str | None = None,
) -> RunResult:
    """Refit a stored study's best trial exactly as ``carsearch run`` did, and export it.

    Args:
        study_name: the study; may be left out when the storage holds only one.
        storage: the study's storage URL.
        out: the bundle's folder (default ``<studies folder>/<study>/best``).
        data: the data file, when it has moved since the search (its content must match).
        device: train on this device instead of the stored one (numbers may then differ).

    Raises:
        StudyError: no such study, no completed trial, or data other than the study's.
        StorageError: the storage failed while the bundle was recorded on the study.

    Example:
        >>> import carsearch
        >>> carsearch.export_study("tiny", storage="sqlite:///studies.db").bundle  # doctest: +SKIP
        PosixPath('studies/tiny/best')
    """
    study = open_existing(study_name, storage)
    changes = {"storage": storage, "data": data, "device": device, "out": out and str(out)}
    config = stored_config(study).replace(**{k: v for k, v in changes.items() if v is not None})
    if config.data is not None and not Path(config.data).is_file():
        raise StudyError(
            f"the data file of study {study.study_name!r}, {config.data}, is not here "
            "(searched from another folder?); pass it with --data"
        )
    set_threads(config.threads)
    torch_device = resolve_device(config.device)
    prepared = prepare(config)
    config = config.for_task(prepared.table.task)
    if study.user_attrs.get(FINGERPRINT_ATTR) not in (None, prepared.table.fingerprint()):
        raise StudyError(
            f"{prepared.table.source} is not the data study {study.study_name!r} was made from "
            "(its fingerprint differs); pass the original file with --data"
        )
    with storage_faults(storage):
        finished = finish(study, config, prepared, torch_device)
    summary = summarize(study, storage, finished=finished, device=torch_device)
    return RunResult(study, finished.refit, finished.bundle, summary)
