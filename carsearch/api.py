"""The Python API: the searches and exports the CLI runs, for notebooks and scripts."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import optuna

from carsearch.bundle.folders import check_out_folder
from carsearch.config import DEFAULT_STORAGE, RunConfig
from carsearch.data.describe import kinds_line
from carsearch.data.prepare import default_study_name, prepare, same_data
from carsearch.exceptions import StudyError
from carsearch.pipeline import bundle_dir, finish, optimize, summarize
from carsearch.search.faults import storage_faults
from carsearch.search.storage import make_storage, trial_storage
from carsearch.search.study import FINGERPRINT_ATTR, open_existing, open_study, stored_config
from carsearch.summary import Summary
from carsearch.training.device import device_label, resolve_device, set_threads
from carsearch.training.refit import Refit
from carsearch.urls import shown_url

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
    started = time.perf_counter()
    set_threads(config.threads)
    device = resolve_device(config.device)
    prepared = prepare(config)
    config = config.for_task(prepared.table.task)
    logger.info("%s", kinds_line(prepared.table))
    storage = make_storage(config.storage, trial_budget=config.n_trials)
    name = default_study_name(config)
    bundle_dir(config, name)  # the default folder too, before the search
    searched = trial_storage(storage, live_writes=config.live_writes)
    with storage_faults(config.storage):
        study = open_study(config, storage=searched, name=name, table=prepared.table)
        logger.info(
            "study %r in %s: %d trials wanted, device %s",
            study.study_name,
            shown_url(config.storage),
            config.n_trials,
            device_label(device),
        )
        optimize(study, config, prepared, device, progress=progress)
        finished = finish(study, config, prepared, device)
    wall = time.perf_counter() - started
    summary = summarize(study, config.storage, finished=finished, device=device, wall_seconds=wall)
    return RunResult(study, finished.refit, finished.bundle, summary)


def export_study(
    study_name: str | None = None,
    *,
    storage: str = DEFAULT_STORAGE,
    out: str | Path | None = None,
    data: str | None = None,
    device: str | None = None,
    ensemble: int | None | Literal["stored"] = "stored",
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

    Raises:
        StudyError: no such study, no completed trial, or data other than the study's.
        BundleError: ``out`` holds something else than a carsearch bundle.
        StorageError: the storage failed while the bundle was recorded on the study.

    Example:
        >>> import carsearch
        >>> carsearch.export_study("tiny", storage="sqlite:///studies.db").bundle  # doctest: +SKIP
        PosixPath('studies/tiny/best')
    """
    study = open_existing(study_name, storage)
    changes = {"storage": storage, "data": data, "device": device, "out": out and str(out)}
    config = stored_config(study).replace(**{k: v for k, v in changes.items() if v is not None})
    if ensemble != "stored":
        config = config.replace(ensemble=ensemble)
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
