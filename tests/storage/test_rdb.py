"""What carsearch.storage.rdb relies on in Optuna's private RDB API.

These fail loudly, naming the missing piece, when an Optuna release changes it; the behaviour
built on them (exact trial totals, silent trials failed) is tested in test_storage.py.
"""

from __future__ import annotations

import inspect
from importlib import metadata

import optuna
import pytest
import sqlalchemy.orm
from optuna.storages._cached_storage import _CachedStorage
from optuna.storages._rdb import models
from packaging.requirements import Requirement

from carsearch.storage.rdb import CarsearchStorage


def test_the_installed_optuna_is_one_the_pin_allows() -> None:
    required = [
        Requirement(text)
        for text in metadata.requires("carsearch") or []
        if Requirement(text).name == "optuna"
    ]
    assert required and required[0].specifier.contains(optuna.__version__)


@pytest.mark.parametrize(
    ("model", "attributes"),
    [
        (models.TrialModel, ("trial_id", "study_id", "state", "datetime_start", "heartbeats")),
        (models.StudyModel, ("study_id", "find_or_raise_by_id")),
    ],
)
def test_the_tables_have_what_the_budget_query_reads(model: type, attributes: tuple) -> None:
    sqlalchemy.orm.configure_mappers()  # backrefs such as TrialModel.heartbeats appear here
    missing = [name for name in attributes if not hasattr(model, name)]
    assert not missing, f"optuna {optuna.__version__}: {model.__name__} lacks {missing}"


def test_find_or_raise_by_id_still_takes_for_update() -> None:
    parameters = inspect.signature(models.StudyModel.find_or_raise_by_id).parameters
    assert "for_update" in parameters


@pytest.mark.parametrize(
    ("method", "parameters"),
    [
        ("_create_new_trial", ["self", "study_id", "template_trial"]),
        ("_get_stale_trial_ids", ["self", "study_id"]),
        ("set_trial_state_values", ["self", "trial_id", "state", "values"]),
    ],
)
def test_the_overridden_methods_keep_their_signatures(method: str, parameters: list) -> None:
    base = getattr(optuna.storages.RDBStorage, method)
    assert list(inspect.signature(base).parameters) == parameters
    assert getattr(CarsearchStorage, method) is not base  # carsearch's override is the one used


def test_the_trial_cache_creates_trials_through_the_overridden_method() -> None:
    # The budget is claimed in _create_new_trial because Optuna's cache calls it, not the
    # public create_new_trial; if that changes, the budget would silently stop applying.
    assert "._create_new_trial(" in inspect.getsource(_CachedStorage.create_new_trial)
