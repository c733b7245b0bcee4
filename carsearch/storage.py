"""Opening Optuna's RDB storage from a URL, safe for many worker processes and machines.

On top of :class:`optuna.storages.RDBStorage`, :func:`make_storage` gives:

* **SQLite that parallel workers can share.** The file is put in WAL mode and every
  transaction begins with ``BEGIN IMMEDIATE`` under a 60 s busy timeout. Without the latter,
  a transaction that reads and then writes (most of Optuna's) fails at once with "database
  is locked" when another process committed in between: SQLite cannot wait its way out of a
  stale snapshot, so the busy timeout never applies. Taking the write lock at ``BEGIN`` turns
  that failure into a short wait.
* **A trial budget** (:attr:`CarsearchStorage.trial_budget`) checked in the same transaction
  that starts a trial, so workers on any number of machines never start more trials than
  the study still needs.
* **Heartbeats**: a trial whose process died (SIGKILL, power loss) is failed once its
  heartbeat is ``grace_period`` seconds old, and its parameters are queued again.
* **Old schemas**: a SQLite file made by an older Optuna is upgraded after a backup copy; a
  database server's is left alone, with the command that upgrades it.
"""

from __future__ import annotations

import inspect
import logging
import sqlite3
import warnings
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from optuna.storages._rdb import models  # the tables; the budget query must read them
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.engine import URL, Engine, make_url

from carsearch.exceptions import StudyError

logger = logging.getLogger("carsearch")

#: Seconds between heartbeats of a running trial.
HEARTBEAT_INTERVAL = 10
#: Seconds without a heartbeat after which a running trial counts as dead. Generous: a busy
#: machine can delay a heartbeat, and a live trial failed by mistake is lost work.
GRACE_PERIOD = 60
#: Times the parameters of a trial whose worker died are tried again.
MAX_RETRY = 3
#: Seconds a SQLite connection waits for the write lock before giving up.
BUSY_TIMEOUT = 60.0
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
        # Optuna 5 stores naive UTC there, older releases the starting process's local time.
        if hasattr(models.TrialModel, "_datetime_start_utc"):
            now = datetime.now(timezone.utc).replace(tzinfo=None)
        else:
            now = datetime.now()
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


def make_storage(
    url: str,
    *,
    trial_budget: int | None = None,
    heartbeat_interval: int = HEARTBEAT_INTERVAL,
    grace_period: int = GRACE_PERIOD,
) -> CarsearchStorage:
    """The storage for ``url``: SQLite (its folder created), PostgreSQL, MySQL.

    Args:
        url: an SQLAlchemy URL, e.g. ``sqlite:///studies/carsearch.db`` or
            ``postgresql://user:password@host/database``.
        trial_budget: the most complete, pruned and running trials a study may hold
            before no more start (see :class:`CarsearchStorage`); ``None``: no limit.
        heartbeat_interval: seconds between heartbeats of a running trial.
        grace_period: seconds without a heartbeat after which a running trial is failed
            (by the next process that starts a trial) and its parameters queued again.

    Raises:
        StudyError: the database's schema is older than this Optuna's and is not a SQLite
            file (the message gives the upgrade command), or newer than this Optuna knows.
    """
    parsed = make_url(url)
    path = sqlite_path(parsed)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        enable_wal(path)
    upgrade_if_old(url, path)
    if parsed.get_backend_name() == "sqlite" and path is None:
        # In memory: one process, and a heartbeat thread would see another, empty database.
        return CarsearchStorage(url, trial_budget=trial_budget)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return CarsearchStorage(
            url,
            trial_budget=trial_budget,
            engine_kwargs=_engine_kwargs(parsed),
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period,
            **{_STALE_CALLBACK_ARG: _retry_callback()},
        )


def sqlite_path(url: URL) -> Path | None:
    """The file of a SQLite URL; ``None`` for in-memory SQLite and other databases."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def enable_wal(path: Path) -> None:
    """Put a SQLite file in WAL mode (a property of the file): readers stop blocking writers."""
    with closing(sqlite3.connect(path, timeout=BUSY_TIMEOUT)) as connection:
        connection.execute("PRAGMA journal_mode=WAL")


def tune_sqlite(engine: Engine) -> None:
    """Make every transaction of ``engine`` take SQLite's write lock at once, and wait for it."""
    sqlalchemy.event.listen(engine, "connect", _on_sqlite_connect)
    sqlalchemy.event.listen(engine, "begin", _on_sqlite_begin)
    engine.dispose()  # pooled connections were made before the listeners


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # SQLAlchemy, not the sqlite3 module, decides when transactions begin (see _on_begin).
    dbapi_connection.isolation_level = None
    dbapi_connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
    # With WAL this loses no committed data on a crash of the process, only on power loss,
    # and holds the write lock for less time.
    dbapi_connection.execute("PRAGMA synchronous = NORMAL")


def _on_sqlite_begin(connection: sqlalchemy.Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def upgrade_if_old(url: str, path: Path | None) -> None:
    """Bring a storage made by an older Optuna to this Optuna's schema, or say how.

    A SQLite file is copied to ``FILE.<old schema>.bak`` and upgraded in place; a database
    server may have older clients still running, so its upgrade is left to its owner.
    """
    if not _has_optuna_tables(url):
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        probe = optuna.storages.RDBStorage(
            url, skip_compatibility_check=True, skip_table_creation=True
        )
    try:
        current, head = probe.get_current_version(), probe.get_head_version()
        if current == head:
            return
        shown = make_url(url).render_as_string(hide_password=True)
        if current not in probe.get_all_versions():
            raise StudyError(
                f"the storage {shown} has Optuna schema {current}, newer than this Optuna "
                f"{optuna.__version__} knows (up to {head}); upgrade it: pip install -U optuna"
            )
        if path is None:
            raise StudyError(
                f"the storage {shown} has Optuna schema {current}, older than this Optuna's "
                f"{head}; with no search running on it, upgrade it once with: "
                f"optuna storage upgrade --storage '{url}'"
            )
        backup = backup_sqlite(path, f"{current}.bak")
        probe.upgrade()
        logger.warning(
            "upgraded %s from Optuna schema %s to %s; the old file is kept as %s",
            path,
            current,
            head,
            backup,
        )
    finally:
        probe.engine.dispose()


def backup_sqlite(path: Path, suffix: str) -> Path:
    """A consistent copy of a SQLite file (WAL contents included) at ``PATH.suffix``."""
    backup = path.with_name(f"{path.name}.{suffix}")
    with closing(sqlite3.connect(path, timeout=BUSY_TIMEOUT)) as source:
        with closing(sqlite3.connect(backup)) as target:
            source.backup(target)
    return backup


def _has_optuna_tables(url: str) -> bool:
    engine = sqlalchemy.create_engine(url)
    try:
        return sqlalchemy.inspect(engine).has_table("version_info")
    finally:
        engine.dispose()


def _engine_kwargs(url: URL) -> dict[str, Any]:
    if url.get_backend_name() == "sqlite":
        return {"connect_args": {"timeout": BUSY_TIMEOUT}}
    # Long searches outlive idle server connections; test each before use.
    return {"pool_pre_ping": True}


def _retry_callback() -> Any:
    # Optuna 4.9 renamed the callback and its argument; older releases only know the old ones.
    retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
    if retry is None:
        retry = optuna.storages.RetryFailedTrialCallback
    return retry(max_retry=MAX_RETRY)


_STALE_CALLBACK_ARG = (
    "heartbeat_stale_trial_callback"
    if "heartbeat_stale_trial_callback"
    in inspect.signature(optuna.storages.RDBStorage.__init__).parameters
    else "failed_trial_callback"
)


def is_server(url: str) -> bool:
    """Whether ``url`` names a database server, which other machines may share, not SQLite."""
    return make_url(url).get_backend_name() != "sqlite"
