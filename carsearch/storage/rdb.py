"""The one module that reads Optuna's private RDB tables (``optuna.storages._rdb.models``).

Three things need them: the **trial budget**, checked in the same transaction that starts a
trial (so workers on any number of machines never start more trials than the study needs),
failing running trials that **never sent a heartbeat**, and writing a trial's buffered
parameters, epoch values and attributes **in one transaction** (:func:`write_trial`).
Optuna's tables are not public API, so ``pyproject.toml`` pins ``optuna`` to the major
versions this module is tested on, and ``tests/search/test_rdb.py`` fails loudly when a new
Optuna changes what it relies on.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import optuna
import sqlalchemy
from optuna.distributions import (
    BaseDistribution,
    check_distribution_compatibility,
    distribution_to_json,
    json_to_distribution,
)
from optuna.storages._rdb import models
from optuna.trial import FrozenTrial, TrialState

from carsearch.storage.sqlite import sqlite_path, tune_sqlite

#: Trial states that use up a study's budget: finished, or running somewhere now.
BUDGETED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)


class BudgetReached(Exception):
    """No trial may start: the study holds or runs as many trials as the run asked for.

    Control flow between the storage and the trial loop, never shown to users.

    Attributes:
        heartbeat: whether the storage fails dead workers' trials, so that waiting for the
            running ones to end is sure to end.
    """

    def __init__(self, message: str, *, heartbeat: bool) -> None:
        super().__init__(message)
        self.heartbeat = heartbeat


class CarsearchStorage(optuna.storages.RDBStorage):
    """Optuna's RDB storage, with SQLite tuned for parallel writers and a trial budget.

    Args:
        url: the database URL.
        trial_budget: when given, a trial starts (is created, or leaves the queue) only while
            the study holds fewer complete, pruned and running trials than this; otherwise
            creating one raises :class:`BudgetReached` and a queued one stays queued.
        **kwargs: passed to :class:`optuna.storages.RDBStorage`.

    Example:
        >>> storage = CarsearchStorage("sqlite:///:memory:", trial_budget=5)
    """

    def __init__(self, url: str, *, trial_budget: int | None = None, **kwargs: Any) -> None:
        self.trial_budget = trial_budget
        super().__init__(url, **kwargs)
        self._tune()

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__(state)
        self._tune()

    def _tune(self) -> None:
        # In-memory SQLite lives in one connection of one process: nothing to share or tune.
        if sqlite_path(self.engine.url) is not None:
            tune_sqlite(self.engine)

    def _create_new_trial(
        self, study_id: int, template_trial: FrozenTrial | None = None
    ) -> FrozenTrial:
        # Overridden here, not in create_new_trial: Optuna's trial cache calls this one.
        # A template is an enqueued or added trial, not one that starts running now.
        if template_trial is not None or self.trial_budget is None:
            return super()._create_new_trial(study_id, template_trial)
        with self._claim(study_id=study_id):
            return super()._create_new_trial(study_id)

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        if state != TrialState.RUNNING or self.trial_budget is None:
            return super().set_trial_state_values(trial_id, state, values)
        try:
            with self._claim(trial_id=trial_id):
                return super().set_trial_state_values(trial_id, state, values)
        except BudgetReached:
            return False  # what Optuna answers when another worker took the queued trial

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        """Optuna's stale trials, and running ones that never sent a heartbeat.

        A trial with no heartbeat at all, older than the grace period, belongs to a process
        that died before its first heartbeat, or to a run without heartbeats (an older
        carsearch): Optuna would leave it running forever, and the budget would wait for it.
        """
        stale = super()._get_stale_trial_ids(study_id)
        assert self.heartbeat_interval is not None
        grace = self.grace_period or 2 * self.heartbeat_interval
        started = models.TrialModel.__table__.c.datetime_start
        now = datetime.now(timezone.utc).replace(tzinfo=None)  # Optuna 5 stores naive UTC
        session = self.scoped_session()
        try:
            silent = (
                session.query(models.TrialModel.trial_id)
                .filter(models.TrialModel.study_id == study_id)
                .filter(models.TrialModel.state == TrialState.RUNNING)
                .filter(started < now - timedelta(seconds=grace))
                .filter(~models.TrialModel.heartbeats.any())
                .all()
            )
        finally:
            session.close()
        return stale + [int(trial_id) for (trial_id,) in silent if trial_id not in stale]

    @contextmanager
    def _claim(self, *, study_id: int | None = None, trial_id: int | None = None) -> Iterator[None]:
        """Check the budget under the study's lock, held until the caller's commit.

        Optuna's storage methods use ``self.scoped_session()``, the one session of this
        thread, so the trial the caller starts joins the transaction opened here, and its
        commit releases the lock (``FOR UPDATE`` on the study row; on SQLite the write lock
        that ``BEGIN IMMEDIATE`` took).
        """
        assert self.trial_budget is not None
        session = self.scoped_session()
        try:
            if study_id is None:
                # A column query: loading the trial object here would keep its pre-lock state
                # in the session, and a worker that waited for the lock would then see a queued
                # trial that another worker has started (seen on PostgreSQL: one trial run twice).
                found = (
                    session.query(models.TrialModel.study_id)
                    .filter(models.TrialModel.trial_id == trial_id)
                    .scalar()
                )
                if found is None:
                    raise KeyError(f"No trial with trial_id {trial_id} exists.")
                study_id = int(found)
            models.StudyModel.find_or_raise_by_id(study_id, session, for_update=True)
            session.expire_all()  # read every row anew under the lock
            used = (
                session.query(sqlalchemy.func.count(models.TrialModel.trial_id))
                .filter(models.TrialModel.study_id == study_id)
                .filter(models.TrialModel.state.in_(BUDGETED))
                .scalar()
            )
            if used >= self.trial_budget:
                raise BudgetReached(
                    f"{used} of {self.trial_budget} trials finished or running",
                    heartbeat=self.heartbeat_interval is not None,
                )
        except BaseException:
            session.rollback()
            session.close()
            raise
        yield


@dataclass
class Pending:
    """Writes of one running trial not yet in the database."""

    params: list[tuple[str, float, BaseDistribution]] = field(default_factory=list)
    values: dict[int, float] = field(default_factory=dict)
    user_attrs: dict[str, Any] = field(default_factory=dict)
    system_attrs: dict[str, Any] = field(default_factory=dict)
    heartbeat: bool = False

    def clear(self) -> None:
        self.params.clear()
        self.values.clear()
        self.user_attrs.clear()
        self.system_attrs.clear()
        self.heartbeat = False


def write_trial(
    storage: optuna.storages.RDBStorage,
    trial_id: int,
    pending: Pending,
    *,
    state: TrialState | None = None,
    value: float | None = None,
    completed: datetime | None = None,
) -> None:
    """Write ``pending`` (and a final ``state`` and ``value``) in one transaction.

    What Optuna's own setters do, row for row, so the database holds what it would after
    each call one by one: a parameter's distribution is checked against the study's, a
    finished trial refuses writes, attributes are upserted.

    Raises:
        optuna.exceptions.UpdateFinishedTrialError: the trial was finished elsewhere.
        ValueError: a parameter's distribution differs from the one the study holds.
    """
    session = storage.scoped_session()
    try:
        trial: Any = models.TrialModel.find_or_raise_by_id(trial_id, session, for_update=True)
        storage.check_trial_is_updatable(trial_id, trial.state)
        _check_distributions(session, int(trial.study_id), pending.params)
        _add_rows(session, trial_id, pending)
        for model, attrs in (
            (models.TrialUserAttributeModel, pending.user_attrs),
            (models.TrialSystemAttributeModel, pending.system_attrs),
        ):
            for key, attr in attrs.items():
                storage._set_trial_attr_without_commit(session, model, trial_id, key, attr)
        if value is not None:
            storage._set_trial_value_without_commit(session, trial, 0, value)
        if state is not None:
            trial.state, trial.datetime_complete = state, completed
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def study_of_trial(storage: optuna.storages.RDBStorage, trial_id: int) -> int:
    """The id of the study that holds trial ``trial_id``."""
    session = storage.scoped_session()
    try:
        found = (
            session.query(models.TrialModel.study_id)
            .filter(models.TrialModel.trial_id == trial_id)
            .scalar()
        )
    finally:
        session.close()
    if found is None:
        raise KeyError(f"No trial with trial_id {trial_id} exists.")
    return int(found)


def _check_distributions(
    session: Any, study_id: int, params: list[tuple[str, float, BaseDistribution]]
) -> None:
    """One query for the study's distributions of every parameter name being written.

    Each name has one stored distribution, or a few compatible ones (a float's range may
    change between runs), so the distinct pairs are few, whatever the number of trials.
    """
    if not params:
        return
    names = [name for name, _, _ in params]
    stored = (
        session.query(models.TrialParamModel.param_name, models.TrialParamModel.distribution_json)
        .join(models.TrialModel)
        .filter(models.TrialModel.study_id == study_id)
        .filter(models.TrialParamModel.param_name.in_(names))
        .distinct()
        .all()
    )
    known: dict[str, list[BaseDistribution]] = {}
    for name, text in stored:
        known.setdefault(name, []).append(json_to_distribution(text))
    for name, _, distribution in params:
        for previous in known.get(name, ()):
            check_distribution_compatibility(previous, distribution)


def _add_rows(session: Any, trial_id: int, pending: Pending) -> None:
    for name, internal, distribution in pending.params:
        session.add(
            models.TrialParamModel(
                trial_id=trial_id,
                param_name=name,
                param_value=internal,
                distribution_json=distribution_to_json(distribution),
            )
        )
    for step, value in pending.values.items():
        stored, kind = models.TrialIntermediateValueModel.intermediate_value_to_stored_repr(value)
        session.add(
            models.TrialIntermediateValueModel(
                trial_id=trial_id,
                step=step,
                intermediate_value=stored,
                intermediate_value_type=kind,
            )
        )
    if pending.heartbeat:
        session.add(models.TrialHeartbeatModel(trial_id=trial_id))
