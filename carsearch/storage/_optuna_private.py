"""The one module that touches Optuna's private API.

Optuna's tables (``optuna.storages._rdb.models``), its heartbeat base, its frozen study, the
ids behind a trial and a study's storage, and the storage methods Optuna calls but does not
publish: carsearch needs each of them once, for the trial budget, for failing trials that
never sent a heartbeat, and for writing a trial's buffered rows in one transaction. Nothing
else in carsearch names them. ``pyproject.toml`` pins ``optuna`` to the major versions this
module is tested on, and ``tests/storage/test_optuna_private.py`` has one guard test per
symbol, so a new Optuna release names what it broke.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import optuna
import sqlalchemy
from optuna.distributions import (
    BaseDistribution,
    check_distribution_compatibility,
    distribution_to_json,
    json_to_distribution,
)
from optuna.storages import BaseStorage
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.storages._rdb import models
from optuna.study._frozen import FrozenStudy
from optuna.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from carsearch.storage.pending import Pending

__all__ = [
    "BaseHeartbeat",
    "FrozenStudy",
    "HeartbeatHooks",
    "RDBHooks",
    "count_in_states",
    "id_of",
    "silent_trial_ids",
    "heartbeat_stale_trial_ids",
    "study_of_trial",
    "study_storage",
    "write_trial",
]


def id_of(trial: optuna.Trial | FrozenTrial) -> int:
    """The storage's id of ``trial`` (Optuna's trial numbers count per study)."""
    return int(trial._trial_id)


def study_storage(study: optuna.Study) -> BaseStorage:
    """The storage ``study`` reads and writes through (Optuna names it ``_storage``)."""
    storage: BaseStorage = study._storage
    return storage


def heartbeat_stale_trial_ids(storage: Any, study_id: int) -> list[int]:
    """The running trials of ``study_id`` whose heartbeat is stale, by Optuna's rule."""
    stale: list[int] = storage._get_stale_trial_ids(study_id)
    return stale


class RDBHooks(optuna.storages.RDBStorage):
    """Optuna's RDB storage with its private hooks turned into two overridable methods.

    :meth:`starting_trial` wraps the creation of a trial that starts running now (Optuna's
    trial cache calls ``_create_new_trial``, not ``create_new_trial``); :meth:`silent_trial_ids`
    adds to the stale trials Optuna finds by their heartbeats.
    """

    def _create_new_trial(
        self, study_id: int, template_trial: FrozenTrial | None = None
    ) -> FrozenTrial:
        # A template is an enqueued or added trial, not one that starts running now.
        if template_trial is not None:
            return super()._create_new_trial(study_id, template_trial)
        with self.starting_trial(study_id=study_id):
            return super()._create_new_trial(study_id)

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        stale = super()._get_stale_trial_ids(study_id)
        return stale + [t for t in self.silent_trial_ids(study_id) if t not in stale]

    @contextmanager
    def starting_trial(
        self, *, study_id: int | None = None, trial_id: int | None = None
    ) -> Iterator[None]:
        """Around the start of a trial, in its transaction; nothing here."""
        yield

    def silent_trial_ids(self, study_id: int) -> list[int]:
        """Running trials to fail besides those with a stale heartbeat; none here."""
        return []


class HeartbeatHooks(BaseHeartbeat):
    """Optuna's heartbeat base, with its private stale-trial query as :meth:`stale_trial_ids`."""

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        return self.stale_trial_ids(study_id)

    def stale_trial_ids(self, study_id: int) -> list[int]:
        """The running trials of ``study_id`` to fail as stale."""
        raise NotImplementedError


def silent_trial_ids(storage: optuna.storages.RDBStorage, study_id: int, grace: float) -> list[int]:
    """Running trials of ``study_id`` started over ``grace`` seconds ago with no heartbeat."""
    started = models.TrialModel.__table__.c.datetime_start
    now = datetime.now(timezone.utc).replace(tzinfo=None)  # Optuna 5 stores naive UTC
    session = storage.scoped_session()
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
    return [int(found) for (found,) in silent]


def count_in_states(
    session: Any, states: Sequence[TrialState], *, study_id: int | None, trial_id: int | None
) -> int:
    """Lock the study (of ``trial_id``) until ``session`` commits; count its trials in ``states``.

    A column query finds the study of a trial: loading the trial object would keep its
    pre-lock state in the session, and a worker that waited for the lock would then see a
    queued trial that another worker has started (seen on PostgreSQL: one trial run twice).
    """
    if study_id is None:
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
    used: int = (
        session.query(sqlalchemy.func.count(models.TrialModel.trial_id))
        .filter(models.TrialModel.study_id == study_id)
        .filter(models.TrialModel.state.in_(states))
        .scalar()
    )
    return used


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
