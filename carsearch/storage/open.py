"""Opening Optuna's RDB storage from a URL, safe for many worker processes and machines.

On top of :class:`optuna.storages.RDBStorage`, :func:`make_storage` gives:

* **SQLite that parallel workers can share** (:mod:`carsearch.storage.sqlite`).
* **A trial budget** (:class:`carsearch.storage.rdb.CarsearchStorage`) checked in the same
  transaction that starts a trial, so workers on any number of machines never start more
  trials than the study still needs.
* **Heartbeats**: a trial whose process died (SIGKILL, power loss) is failed once its
  heartbeat is ``grace_period`` seconds old, and its parameters are queued again.
* **Old schemas**: a SQLite file made by an older Optuna is upgraded after a backup copy; a
  database server's is left alone, with the command that upgrades it.
* **One-line errors** for what goes wrong when a storage opens: a URL that does not parse, a
  driver that is not installed (naming the extra that installs it), a server that does not
  answer, a database that does not exist, credentials the server refuses.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import optuna
from sqlalchemy.engine import URL, make_url

from carsearch.storage.errors import opening_errors
from carsearch.storage.first_open import create_tables, folder_lock
from carsearch.storage.rdb import CarsearchStorage
from carsearch.storage.schema import upgrade_if_old
from carsearch.storage.sqlite import enable_wal, sqlite_path
from carsearch.storage.urls import engine_kwargs, storage_url

logger = logging.getLogger("carsearch")

HEARTBEAT_INTERVAL = 10
#: Seconds without a heartbeat after which a running trial counts as dead. Generous: a busy
#: machine can delay a heartbeat, and a live trial failed by mistake is lost work.
GRACE_PERIOD = 60
#: Times the parameters of a trial whose worker died are tried again.
MAX_RETRY = 3


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
        ConfigError: ``url`` does not parse, or its driver is not installed (the message
            names the extra that installs it).
        StudyError: the server does not answer, has no such database or refuses the user;
            the SQLite file is not a database; the database's schema is older than this
            Optuna's and is not a SQLite file (the message gives the upgrade command), or
            newer than this Optuna knows.
    """
    parsed = storage_url(url)
    if parsed.drivername != make_url(url).drivername:
        url = parsed.render_as_string(hide_password=False)
    path = sqlite_path(parsed)
    with opening_errors(parsed):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        with folder_lock(None if path is None else path.parent):
            if path is not None:
                enable_wal(path)
            if path is not None or parsed.get_backend_name() != "sqlite":
                # Before the schema check: that opens Optuna's version manager, which stamps
                # a half-created storage and collides with the process creating it.
                create_tables(url, parsed, engine_kwargs(parsed))
        upgrade_if_old(url, path)
        return _open(url, parsed, path, trial_budget, heartbeat_interval, grace_period)


def _open(
    url: str,
    parsed: URL,
    path: Path | None,
    trial_budget: int | None,
    heartbeat_interval: int,
    grace_period: int,
) -> CarsearchStorage:
    if parsed.get_backend_name() == "sqlite" and path is None:
        # In memory: one process, and a heartbeat thread would see another, empty database.
        return CarsearchStorage(url, trial_budget=trial_budget)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return CarsearchStorage(
            url,
            trial_budget=trial_budget,
            engine_kwargs=engine_kwargs(parsed),
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                max_retry=MAX_RETRY
            ),
        )
