"""Optuna's RDB storage with SQLite tuned for parallel writers, a trial budget, and trials that
never sent a heartbeat failed.

The trial budget is checked in the same transaction that starts a trial, so workers on any
number of machines never start more trials than the study needs. What this needs of Optuna's
private API (its tables, its hooks) comes from :mod:`carsearch.storage._optuna_private`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from optuna.trial import TrialState

from carsearch.storage._optuna_private import RDBHooks, count_in_states, silent_trial_ids
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


class CarsearchStorage(RDBHooks):
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

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        if state != TrialState.RUNNING or self.trial_budget is None:
            return super().set_trial_state_values(trial_id, state, values)
        try:
            with self.starting_trial(trial_id=trial_id):
                return super().set_trial_state_values(trial_id, state, values)
        except BudgetReached:
            return False  # what Optuna answers when another worker took the queued trial

    def silent_trial_ids(self, study_id: int) -> list[int]:
        """Running trials that never sent a heartbeat, older than the grace period.

        Such a trial belongs to a process that died before its first heartbeat, or to a run
        without heartbeats (an older carsearch): Optuna would leave it running forever, and
        the budget would wait for it.
        """
        assert self.heartbeat_interval is not None
        grace = self.grace_period or 2 * self.heartbeat_interval
        return silent_trial_ids(self, study_id, grace)

    @contextmanager
    def starting_trial(
        self, *, study_id: int | None = None, trial_id: int | None = None
    ) -> Iterator[None]:
        """Check the budget under the study's lock, held until the caller's commit.

        Optuna's storage methods use ``self.scoped_session()``, the one session of this
        thread, so the trial the caller starts joins the transaction opened here, and its
        commit releases the lock (``FOR UPDATE`` on the study row; on SQLite the write lock
        that ``BEGIN IMMEDIATE`` took).
        """
        if self.trial_budget is None:
            yield
            return
        session = self.scoped_session()
        try:
            used = count_in_states(session, BUDGETED, study_id=study_id, trial_id=trial_id)
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

    def flush(self, trial_id: int) -> None:
        """Nothing to write: every value went to the database as it came."""

    def drop_running(self) -> list[int]:
        """No trial is held here: Optuna records a failed trial itself."""
        return []
