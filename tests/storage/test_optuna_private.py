"""One guard per symbol of Optuna's private API that carsearch.storage._optuna_private uses.

Each fails, naming the symbol, when an Optuna release removes it or changes the shape the
module relies on; the behaviour built on them (exact trial totals, silent trials failed,
buffered writes) is tested in test_conformance.py, test_storage.py and test_buffered.py.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from importlib import metadata

import optuna
import pytest
import sqlalchemy.orm
from packaging.requirements import Requirement

from carsearch.storage import _optuna_private as private


def test_the_installed_optuna_is_one_the_pin_allows() -> None:
    required = [
        Requirement(text)
        for text in metadata.requires("carsearch") or []
        if Requirement(text).name == "optuna"
    ]
    assert required and required[0].specifier.contains(optuna.__version__)


def _params(function: Callable[..., object]) -> list[str]:
    return list(inspect.signature(function).parameters)


def _has(cls: type, *names: str) -> bool:
    sqlalchemy.orm.configure_mappers()  # backrefs such as TrialModel.heartbeats appear here
    return all(hasattr(cls, name) for name in names)


def _trial_ids() -> bool:
    study = optuna.create_study()
    trial = study.ask()
    frozen = study.trials[0]
    return isinstance(trial._trial_id, int) and frozen._trial_id == trial._trial_id


def _study_storage() -> bool:
    study = optuna.create_study()
    return isinstance(study._storage, optuna.storages.BaseStorage)


def _cache_calls_create_new_trial() -> bool:
    # The budget is claimed in _create_new_trial because Optuna's cache calls it, not the
    # public create_new_trial; if that changes, the budget would silently stop applying.
    from optuna.storages._cached_storage import _CachedStorage

    return "._create_new_trial(" in inspect.getsource(_CachedStorage.create_new_trial)


def _heartbeat_base() -> bool:
    from optuna.storages._heartbeat import BaseHeartbeat

    abstract = BaseHeartbeat.__abstractmethods__
    return "_get_stale_trial_ids" in abstract and "record_heartbeat" in abstract


def _frozen_study() -> bool:
    from optuna.study._frozen import FrozenStudy

    studies = optuna.storages.InMemoryStorage().get_all_studies()
    return isinstance(FrozenStudy, type) and studies == []


GUARDS: dict[str, Callable[[], bool]] = {
    "models.TrialModel": lambda: (
        _has(
            private.models.TrialModel,
            "trial_id",
            "study_id",
            "state",
            "datetime_start",
            "heartbeats",
        )
        and _has(private.models.TrialModel, "find_or_raise_by_id")
    ),
    "models.StudyModel.find_or_raise_by_id(for_update)": lambda: (
        "for_update" in _params(private.models.StudyModel.find_or_raise_by_id)
    ),
    "models.TrialParamModel": lambda: _has(
        private.models.TrialParamModel,
        "trial_id",
        "param_name",
        "param_value",
        "distribution_json",
    ),
    "models.TrialIntermediateValueModel": lambda: _has(
        private.models.TrialIntermediateValueModel,
        "step",
        "intermediate_value",
        "intermediate_value_type",
        "intermediate_value_to_stored_repr",
    ),
    "models.TrialHeartbeatModel": lambda: _has(private.models.TrialHeartbeatModel, "trial_id"),
    "models.TrialUserAttributeModel": lambda: _has(private.models.TrialUserAttributeModel, "key"),
    "models.TrialSystemAttributeModel": lambda: _has(
        private.models.TrialSystemAttributeModel, "key"
    ),
    "storages._heartbeat.BaseHeartbeat": _heartbeat_base,
    "study._frozen.FrozenStudy": _frozen_study,
    "Trial._trial_id": _trial_ids,
    "Study._storage": _study_storage,
    "RDBStorage._create_new_trial": lambda: (
        _params(optuna.storages.RDBStorage._create_new_trial)
        == ["self", "study_id", "template_trial"]
    ),
    "_CachedStorage.create_new_trial -> _create_new_trial": _cache_calls_create_new_trial,
    "RDBStorage._get_stale_trial_ids": lambda: (
        _params(optuna.storages.RDBStorage._get_stale_trial_ids) == ["self", "study_id"]
    ),
    "RDBStorage._set_trial_attr_without_commit": lambda: (
        _params(optuna.storages.RDBStorage._set_trial_attr_without_commit)
        == ["self", "session", "model_cls", "trial_id", "key", "value"]
    ),
    "RDBStorage._set_trial_value_without_commit": lambda: (
        _params(optuna.storages.RDBStorage._set_trial_value_without_commit)
        == ["self", "session", "trial", "objective", "value"]
    ),
    "RDBStorage.scoped_session": lambda: callable(
        optuna.storages.RDBStorage("sqlite:///:memory:").scoped_session
    ),
}


@pytest.mark.parametrize("symbol", sorted(GUARDS))
def test_the_private_symbol_has_the_shape_carsearch_relies_on(symbol: str) -> None:
    try:
        ok = GUARDS[symbol]()
    except (AttributeError, ImportError, TypeError) as error:
        pytest.fail(f"optuna {optuna.__version__}: {symbol} is gone or changed: {error}")
    assert ok, f"optuna {optuna.__version__}: {symbol} no longer has the shape carsearch uses"


def test_the_hooks_are_the_methods_optuna_calls() -> None:
    # carsearch's storages override Optuna's private hooks only through the private module.
    assert private.RDBHooks._create_new_trial is not optuna.storages.RDBStorage._create_new_trial
    stale = private.RDBHooks._get_stale_trial_ids
    assert stale is not optuna.storages.RDBStorage._get_stale_trial_ids
