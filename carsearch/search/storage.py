"""Opening Optuna's RDB storage from a URL, safe for many worker processes and machines.

On top of :class:`optuna.storages.RDBStorage`, :func:`make_storage` gives:

* **SQLite that parallel workers can share** (:mod:`carsearch.search.sqlite`).
* **A trial budget** (:class:`carsearch.search.rdb.CarsearchStorage`) checked in the same
  transaction that starts a trial, so workers on any number of machines never start more
  trials than the study still needs.
* **Heartbeats**: a trial whose process died (SIGKILL, power loss) is failed once its
  heartbeat is ``grace_period`` seconds old, and its parameters are queued again.
* **Old schemas**: a SQLite file made by an older Optuna is upgraded after a backup copy; a
  database server's is left alone, with the command that upgrades it.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from optuna.storages import BaseStorage
from sqlalchemy.engine import URL, make_url

from carsearch.exceptions import StudyError
from carsearch.search.buffered import BufferedStorage
from carsearch.search.rdb import BudgetReached, CarsearchStorage
from carsearch.search.sqlite import BUSY_TIMEOUT, backup_sqlite, enable_wal, sqlite_path

logger = logging.getLogger("carsearch")

#: Seconds between heartbeats of a running trial.
HEARTBEAT_INTERVAL = 10
#: Seconds without a heartbeat after which a running trial counts as dead. Generous: a busy
#: machine can delay a heartbeat, and a live trial failed by mistake is lost work.
GRACE_PERIOD = 60
#: Times the parameters of a trial whose worker died are tried again.
MAX_RETRY = 3

__all__ = [
    "BudgetReached",
    "CarsearchStorage",
    "is_server",
    "make_storage",
    "sqlite_path",
    "studies_dir",
]


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
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                max_retry=MAX_RETRY
            ),
        )


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


def trial_storage(rdb: CarsearchStorage, *, live_writes: bool = False) -> BaseStorage:
    """The storage a search runs its trials on: buffered writes, or ``live_writes`` as they come.

    Buffered (:class:`~carsearch.search.buffered.BufferedStorage`): a running trial's rows are
    written at its start, its pruner's rungs and its end, a few milliseconds a trial. Live:
    every parameter, epoch and attribute in a transaction of its own, as plain Optuna does, so
    a dashboard can follow a running trial epoch by epoch.
    """
    return rdb if live_writes else BufferedStorage(rdb)


def is_server(url: str) -> bool:
    """Whether ``url`` names a database server, which other machines may share, not SQLite."""
    return make_url(url).get_backend_name() != "sqlite"


def studies_dir(storage: str) -> Path:
    """The SQLite file's folder, or ``studies`` (relative) for other storages."""
    path = sqlite_path(make_url(storage))
    return path.parent if path is not None else Path("studies")
