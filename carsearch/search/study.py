"""The Optuna study: creating, resuming or finding one, its sampler and pruner, its counts."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import TrialState

from carsearch import plugins
from carsearch.config import RunConfig
from carsearch.data.prepare import same_data
from carsearch.data.table import Table
from carsearch.exceptions import StudyError
from carsearch.models.base import SearchContext
from carsearch.search.families import FamilyTurns, SameFamilyPruner
from carsearch.search.space import first_trials
from carsearch.storage.open import make_storage
from carsearch.storage.sqlite import sqlite_path
from carsearch.storage.urls import storage_url
from carsearch.training.device import derive_seed
from carsearch.urls import shown_url

logger = logging.getLogger("carsearch")

CONFIG_ATTR = "carsearch_config"
FINGERPRINT_ATTR = "data_fingerprint"
#: Study user attribute: the data's source, rows, target and class counts, for reports.
DATA_ATTR = "carsearch_data"
#: Study user attribute: the selected plugins by kind, each ``{name, package, version}``.
PLUGINS_ATTR = "carsearch_plugins"
#: Options that define what a study's trial values mean; a resumed run must not change them.
#: The data file's path is not one: the data fingerprint checks its content instead.
STUDY_DEFINING: tuple[str, ...] = (
    "target",
    "header",
    "columns",
    "numeric",
    "categorical",
    "min_category_count",
    "class_weight",
    "task",
    "numeric_encoders",
    "dataset",
    "split",
    "val_fraction",
    "test_fraction",
    "seed",
    "metric",
    "model",
    "optimizers",
    "embedding_rules",
    "max_epochs",
    "patience",
)
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def open_study(
    config: RunConfig,
    *,
    storage: optuna.storages.BaseStorage,
    name: str,
    table: Table,
    context: SearchContext | None = None,
) -> optuna.Study:
    """Create the study, or resume it after checking it was made from the same run setup.

    The plugins the run selects are loaded first, so an unknown or broken one fails before a
    study exists; their names, packages and versions are stored as ``carsearch_plugins``.
    A new study queues its first trials (:func:`~carsearch.search.space.first_trials`) for
    the data of ``context`` (by default, the table's columns and a thousand training rows).
    """
    config = config.for_task(table.task)
    chosen = plugins.check_selection(config)
    if context is None:
        kinds = list(table.kinds.values())
        n_numeric = kinds.count("numeric")
        context = SearchContext(1000, len(kinds) - n_numeric, n_numeric, table.task)
    fingerprint = table.fingerprint()
    n_existing = _n_trials_in(storage, name)
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        direction=config.metric_direction,
        sampler=make_sampler(config, n_existing),
        pruner=make_pruner(config),
        load_if_exists=True,
    )
    stored = study.user_attrs.get(CONFIG_ATTR)
    if stored is None:
        study.set_user_attr(CONFIG_ATTR, config_record(config.to_dict()))
        study.set_user_attr(FINGERPRINT_ATTR, fingerprint)
        study.set_user_attr(DATA_ATTR, table.describe())
        for origin, first in first_trials(config, context) if n_existing == 0 else []:
            # skip_if_exists: machines that create the study together queue it once.
            study.enqueue_trial(first, user_attrs={"origin": origin}, skip_if_exists=True)
    else:
        _check_kinds(study.user_attrs.get(DATA_ATTR), table)
        stored_fingerprint = study.user_attrs.get(FINGERPRINT_ATTR)
        _check_resumable(config, stored, lambda: same_data(stored_fingerprint, table, config))
        if config_record(stored) != stored:  # stored by a carsearch that kept the password
            study.set_user_attr(CONFIG_ATTR, config_record(stored))
    _record_plugins(study, chosen)
    return study


def _record_plugins(study: optuna.Study, chosen: dict[str, list[dict[str, str]]]) -> None:
    """Store the run's plugins; a resumed study keeps its record and warns when it changed."""
    stored = study.user_attrs.get(PLUGINS_ATTR)
    if stored is None:
        study.set_user_attr(PLUGINS_ATTR, chosen)
    elif stored != chosen:
        logger.warning(
            "study %r was made with plugins %s; this run has %s",
            study.study_name,
            json.dumps(stored),
            json.dumps(chosen),
        )


def config_record(record: dict[str, Any]) -> dict[str, Any]:
    """A run configuration as a study stores it: its storage URL without the password.

    The real URL never goes into the study, where anyone who can read the study (its
    dashboard, a copy of the database) would see it.
    """
    storage = record.get("storage")
    return {**record, "storage": shown_url(storage)} if isinstance(storage, str) else record


def stored_config(study: optuna.Study) -> RunConfig:
    """The run configuration a study was created with.

    Its ``storage`` is the URL as shown, password masked: the caller connects with its own.
    """
    record = study.user_attrs.get(CONFIG_ATTR)
    if record is None:
        raise StudyError(f"study {study.study_name!r} was not made by carsearch (no config)")
    return RunConfig.from_dict(record)


def make_sampler(
    config: RunConfig, n_existing: int, worker: int = 0
) -> optuna.samplers.BaseSampler:
    """A seeded TPE sampler; a resumed study gets a fresh stream, not a replay.

    Parallel worker ``worker > 0`` gets a stream of its own, so workers do not sample alike.
    A run of several model families gives each its turn (:class:`FamilyTurns`).
    """
    keys = (n_existing,) if worker == 0 else (n_existing, worker)
    tpe = optuna.samplers.TPESampler(seed=derive_seed(config.seed, *keys), multivariate=True)
    return FamilyTurns(tpe, config.models) if len(config.models) > 1 else tpe


def make_pruner(config: RunConfig) -> optuna.pruners.BasePruner:
    """``successive_halving`` (the default), ``hyperband``, ``median`` or ``none``.

    Successive halving (asynchronous, ASHA) lets the best third of the trials that reach a
    rung go on to the next (rungs at epochs 2, 6, 18): most trials stop after two epochs
    and the promising ones train fully. Hyperband runs several such brackets with larger
    first rungs; the median pruner compares each epoch with the median of finished trials.
    A run of several model families prunes each trial among its family's
    (:class:`SameFamilyPruner`).
    """
    pruner = _pruner(config)
    return SameFamilyPruner(pruner) if len(config.models) > 1 else pruner


def _pruner(config: RunConfig) -> optuna.pruners.BasePruner:
    if config.pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=2, reduction_factor=3)
    if config.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=2, max_resource=config.max_epochs, reduction_factor=3
        )
    if config.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=3)
    return optuna.pruners.NopPruner()


def count_trials(study: optuna.Study) -> dict[str, int]:
    """Trials by outcome: ``complete``, ``pruned``, ``failed``, ``running``, ``waiting``."""
    states = [trial.state for trial in study.get_trials(deepcopy=False)]
    return {
        "complete": states.count(TrialState.COMPLETE),
        "pruned": states.count(TrialState.PRUNED),
        "failed": states.count(TrialState.FAIL),
        "running": states.count(TrialState.RUNNING),
        "waiting": states.count(TrialState.WAITING),
    }


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial:
    """The best completed trial, or a clear error when there is none."""
    try:
        return study.best_trial
    except ValueError:
        raise StudyError(
            f"study {study.study_name!r} has no completed trial yet; run more trials"
        ) from None


def _n_trials_in(storage: optuna.storages.BaseStorage, name: str) -> int:
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        return 0
    return len(storage.get_all_trials(study_id, deepcopy=False))


def _check_resumable(
    config: RunConfig, stored: dict[str, Any], same_data: Callable[[], bool]
) -> None:
    current = config.to_dict()
    # Options added since the study was made take their defaults; carsearch 0.1 knew classes.
    stored = RunConfig.from_dict({"task": "classification", **stored}).to_dict()
    changed = [key for key in STUDY_DEFINING if stored.get(key) != current.get(key)]
    if changed:
        key = changed[0]
        raise StudyError(
            f"the study was made with {key}={stored.get(key)!r}, this run asks for "
            f"{key}={current.get(key)!r}; use the same settings to resume, or --study NEW_NAME"
        )
    if not same_data():
        raise StudyError(
            "the study was made from other data (its fingerprint differs); "
            "use --study NEW_NAME to search this data"
        )


def _check_kinds(recorded: Any, table: Table) -> None:
    """A resumed study's columns must keep their kinds (0.1 studies: all categorical)."""
    kinds = recorded.get("kinds") if isinstance(recorded, dict) else None
    if kinds is None:
        kinds = {name: "categorical" for name in table.kinds}  # carsearch 0.1 knew no others
    for name in sorted(set(kinds) | set(table.kinds)):
        was, now = kinds.get(name, "dropped"), table.kinds.get(name, "dropped")
        if was != now:
            raise StudyError(
                f"the study was made with column {name!r} {was}, this run reads it as {now}; "
                "its trials do not apply to this table: search it with --study NEW_NAME"
            )


def open_existing(study_name: str | None, storage: str) -> optuna.Study:
    """Load a stored study by name (or the storage's only study), never creating one.

    Raises:
        ConfigError: ``storage`` is not a URL, or its driver is not installed.
        StudyError: the SQLite file or the study does not exist; the message lists studies.
    """
    path = sqlite_path(storage_url(storage))
    if path is not None and not path.is_file():
        raise StudyError(f"no study database at {path}")
    backend = make_storage(storage)
    names = optuna.study.get_all_study_names(storage=backend)
    if study_name is None and len(names) == 1:
        study_name = names[0]
    if study_name not in names:
        listed = ", ".join(repr(name) for name in names) or "none"
        wanted = "--study NAME is needed" if study_name is None else f"no study {study_name!r}"
        raise StudyError(f"{wanted} in {shown_url(storage)}; studies there: {listed}")
    return optuna.load_study(study_name=study_name, storage=backend)
