"""The one object a process works on a study storage through: :class:`Storage`."""

from __future__ import annotations

from contextlib import AbstractContextManager
from functools import partial

import optuna
from optuna.storages import BaseStorage
from optuna.trial import TrialState

from carsearch.storage._optuna_private import id_of, study_storage
from carsearch.storage.buffered import BufferedStorage
from carsearch.storage.faults import quietly, storage_faults
from carsearch.storage.open import GRACE_PERIOD, HEARTBEAT_INTERVAL, make_storage
from carsearch.storage.rdb import CarsearchStorage

#: The attribute of Optuna's storage that names the :class:`Storage` owning it.
_OWNER = "carsearch_owner"


class Storage:
    """A study storage: what Optuna reads and writes through, and what carsearch adds.

    Made by :func:`open_storage`. Optuna gets :attr:`optuna`; carsearch asks this object to
    :meth:`flush` a trial's held writes, to :meth:`fail_running` this process's trials, and
    to translate database errors (:meth:`faults`), whichever writes it uses.

    Args:
        rdb: the database storage.
        live_writes: write every value as it comes (plain Optuna), not buffered.

    Example:
        >>> storage = open_storage("sqlite:///:memory:")
        >>> study = optuna.create_study(storage=storage.optuna)
        >>> storage.fail_running()
    """

    def __init__(self, rdb: CarsearchStorage, *, live_writes: bool = False) -> None:
        self.rdb = rdb
        self.url: str = rdb.url
        self.optuna: CarsearchStorage | BufferedStorage = (
            rdb if live_writes else BufferedStorage(rdb)
        )
        setattr(self.optuna, _OWNER, self)

    @classmethod
    def of(cls, study: optuna.Study) -> Storage | None:
        """The storage ``study`` was opened on, if :func:`open_storage` made it."""
        return owner_of(study_storage(study))

    def flush(self, trial: optuna.Trial) -> None:
        """Write ``trial``'s held rows now (its parameters, say); nothing with live writes."""
        self.optuna.flush(id_of(trial))

    def fail_running(self) -> None:
        """Mark the trials this process runs failed, one row each, if the storage takes it.

        With live writes Optuna has already tried to record the failure itself.
        """
        for trial_id in self.optuna.drop_running():
            quietly(partial(self.rdb.set_trial_state_values, trial_id, TrialState.FAIL))

    def faults(self, url: str | None = None) -> AbstractContextManager[None]:
        """Database errors inside become one :class:`~carsearch.exceptions.StorageError`;
        this process's running trials are failed first."""
        return storage_faults(url or self.url, on_fault=self.fail_running)


def owner_of(storage: BaseStorage) -> Storage | None:
    """The :class:`Storage` that owns Optuna's ``storage``, if any."""
    owner = getattr(storage, _OWNER, None)
    return owner if isinstance(owner, Storage) else None


def flush_trial(trial: optuna.Trial) -> None:
    """Write ``trial``'s held rows now, if a :class:`Storage` holds any."""
    owner = owner_of(trial.storage)
    if owner is not None:
        owner.flush(trial)


def open_storage(
    url: str,
    *,
    trial_budget: int | None = None,
    live_writes: bool = False,
    heartbeat_interval: int = HEARTBEAT_INTERVAL,
    grace_period: int = GRACE_PERIOD,
) -> Storage:
    """The :class:`Storage` for ``url`` (see :func:`~carsearch.storage.open.make_storage`).

    Raises:
        ConfigError: ``url`` does not parse, or its driver is not installed.
        StudyError: the storage cannot be opened (one line saying why).
    """
    rdb = make_storage(
        url,
        trial_budget=trial_budget,
        heartbeat_interval=heartbeat_interval,
        grace_period=grace_period,
    )
    return Storage(rdb, live_writes=live_writes)


def trial_storage(rdb: CarsearchStorage, *, live_writes: bool = False) -> BaseStorage:
    """The storage a search runs its trials on: buffered writes, or ``live_writes`` as they come.

    Buffered (:class:`~carsearch.storage.buffered.BufferedStorage`): a running trial's rows are
    written at its start, its pruner's rungs and its end, a few milliseconds a trial. Live:
    every parameter, epoch and attribute in a transaction of its own, as plain Optuna does, so
    a dashboard can follow a running trial epoch by epoch.
    """
    return Storage(rdb, live_writes=live_writes).optuna
