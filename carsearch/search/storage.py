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
* **One-line errors** for what goes wrong when a storage opens: a URL that does not parse, a
  driver that is not installed (naming the extra that installs it), a server that does not
  answer, a database that does not exist, credentials the server refuses.
"""

from __future__ import annotations

import logging
import re
import shlex
import sqlite3
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from optuna.storages import BaseStorage
from sqlalchemy.engine import URL, make_url

from carsearch.exceptions import ConfigError, StudyError
from carsearch.search.buffered import BufferedStorage
from carsearch.search.rdb import BudgetReached, CarsearchStorage
from carsearch.search.sqlite import BUSY_TIMEOUT, backup_sqlite, enable_wal, sqlite_path
from carsearch.urls import shown_url

logger = logging.getLogger("carsearch")

#: Seconds between heartbeats of a running trial.
HEARTBEAT_INTERVAL = 10
#: Seconds without a heartbeat after which a running trial counts as dead. Generous: a busy
#: machine can delay a heartbeat, and a live trial failed by mistake is lost work.
GRACE_PERIOD = 60
#: Times the parameters of a trial whose worker died are tried again.
MAX_RETRY = 3
#: Seconds to wait for a database server to accept a connection.
CONNECT_TIMEOUT = 5

#: Drivers tried in turn for a URL that names none: SQLAlchemy's default first.
_DRIVERS = {
    "postgresql": ("psycopg", "psycopg2"),
    "mysql": ("mysqldb", "pymysql"),
    "mariadb": ("mysqldb", "pymysql"),
}
#: The carsearch extra that installs the drivers of each database, and each driver.
_EXTRAS = {"postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql"}
_EXTRA_OF_DRIVER = {"psycopg": "postgres", "psycopg2": "postgres", "pymysql": "mysql"}
#: The package of a driver outside the extras, where its name differs from the driver's.
_PACKAGES = {"mysqldb": "mysqlclient"}
#: The drivers that take a ``connect_timeout`` argument, in seconds.
_TIMEOUT_DRIVERS = frozenset({"psycopg", "psycopg2", "pymysql", "mysqldb"})
_DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306}
#: MySQL's client error codes: no answer (2002, 2003, 2005), refused user, no database.
_MYSQL_NO_ANSWER = frozenset({2002, 2003, 2005, 2006, 2013})
_MYSQL_REFUSED = frozenset({1044, 1045, 1698})
_MYSQL_NO_DATABASE = 1049
_EXAMPLE_URLS = "sqlite:///studies/carsearch.db or postgresql://USER@HOST:5432/DATABASE"

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
    with _opening_errors(parsed):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            enable_wal(path)
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
            engine_kwargs=_engine_kwargs(parsed),
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                max_retry=MAX_RETRY
            ),
        )


def storage_url(url: str) -> URL:
    """``url`` parsed, with a driver that is installed.

    A URL that names no driver (``postgresql://``, ``mysql://``) gets SQLAlchemy's default
    one when it is installed, else the first installed of :data:`_DRIVERS`: ``mysql://``
    works with ``carsearch[mysql]``'s PyMySQL, ``postgresql://`` with psycopg 3 or psycopg2.

    Raises:
        ConfigError: ``url`` does not parse, names a database SQLAlchemy does not know, or
            needs a driver that is not installed (naming what to install).
    """
    try:
        parsed = make_url(url)
    except (sqlalchemy.exc.ArgumentError, ValueError):
        raise ConfigError(
            f"not a storage URL: {_shown(url)!r}; expected e.g. {_EXAMPLE_URLS}"
        ) from None
    named = "+" in parsed.drivername
    alternatives = () if named else _DRIVERS.get(parsed.drivername, ())
    candidates = [
        parsed,
        *(parsed.set(drivername=f"{parsed.drivername}+{d}") for d in alternatives),
    ]
    missing: list[str] = []
    for candidate in candidates:
        try:
            dialect = candidate.get_dialect()
        except sqlalchemy.exc.NoSuchModuleError:
            raise ConfigError(
                f"the storage URL {_shown(parsed)} names {parsed.drivername!r}, a database or "
                f"driver SQLAlchemy does not know; expected e.g. {_EXAMPLE_URLS}"
            ) from None
        try:
            dialect.import_dbapi()
        except ImportError:
            missing.append(str(dialect.driver))
            continue
        return candidate
    raise ConfigError(_missing_driver(parsed, missing[0], named=named))


def _missing_driver(url: URL, driver: str, *, named: bool) -> str:
    backend = url.get_backend_name()
    extra = _EXTRA_OF_DRIVER.get(driver) if named else _EXTRAS.get(backend)
    remedy = f"'carsearch[{extra}]'" if extra else _PACKAGES.get(driver, driver)
    if not named:
        return (
            f"no {backend} driver is installed for the storage {_shown(url)}: pip install {remedy}"
        )
    return (
        f"the storage {_shown(url)} needs the {driver} driver, which is not installed: "
        f"pip install {remedy}"
    )


@contextmanager
def _opening_errors(url: URL) -> Iterator[None]:
    """Turn the database errors of opening storage ``url`` into one-line :class:`StudyError`."""
    try:
        yield
    except OSError as error:  # the SQLite file's folder
        raise StudyError(
            f"cannot open the SQLite file {url.database}: {error.strerror or error}"
        ) from None
    except sqlite3.Error as error:
        raise StudyError(f"cannot open the SQLite file {url.database}: {error}") from None
    except sqlalchemy.exc.DBAPIError as error:
        raise _opening_error(url, error.orig or error) from None


def _opening_error(url: URL, error: BaseException) -> StudyError:
    """What went wrong, said in one line: the server, the database, the user, or the driver's
    own first line."""
    backend = url.get_backend_name()
    detail = driver_message(error)
    if backend == "sqlite":
        return StudyError(f"cannot open the SQLite file {url.database}: {detail}")
    where = f"{url.host}:{url.port or _DEFAULT_PORTS.get(backend, '')}"
    args: tuple[Any, ...] = getattr(error, "args", ())
    code = args[0] if args and isinstance(args[0], int) else None  # MySQL's drivers
    if code in _MYSQL_NO_ANSWER or _NO_ANSWER.search(detail):
        return StudyError(
            f"no database server answers at {where} ({_no_answer_reason(detail)}); start it, "
            "or fix the host and port in the storage URL"
        )
    if code == _MYSQL_NO_DATABASE or re.search(r"database .* does not exist", detail):
        return StudyError(
            f"the database server at {where} has no database {url.database!r}; create it "
            f"first: {_create_database_command(url)}"
        )
    if code in _MYSQL_REFUSED or _REFUSED.search(detail):
        return StudyError(
            f"the database server at {where} refused user {url.username!r} ({detail}); "
            "check the user name and password in the storage URL"
        )
    return StudyError(f"cannot open the storage {_shown(url)}: {detail}")


_NO_ANSWER = re.compile(
    r"refused|resolve host|translate host|not known|timeout expired|timed out|"
    r"no route to host|unreachable",
    re.IGNORECASE,
)
_REFUSED = re.compile(
    r"password authentication failed|role .* does not exist|no pg_hba\.conf entry|"
    r"authentication failed",
    re.IGNORECASE,
)


def _no_answer_reason(detail: str) -> str:
    lowered = detail.lower()
    if "refused" in lowered:
        return "connection refused"
    if "timeout" in lowered or "timed out" in lowered:
        return f"no reply in {CONNECT_TIMEOUT} s"
    if "resolve" in lowered or "translate host" in lowered or "not known" in lowered:
        return "unknown host"
    return detail


def driver_message(error: BaseException) -> str:
    """The driver's message in one line, without the connection preamble PostgreSQL adds."""
    args: tuple[Any, ...] = getattr(error, "args", ())
    if len(args) == 2 and isinstance(args[0], int):  # MySQL: (code, message)
        text = str(args[1])
    else:
        text = str(error)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else type(error).__name__
    return " ".join(re.split(r"FATAL:\s+|failed:\s+", first)[-1].split())


def _create_database_command(url: URL) -> str:
    host, port, user = url.host or "localhost", url.port, url.username
    name = url.database or ""
    if url.get_backend_name() == "postgresql":
        words = ["createdb", "-h", host, *(["-p", str(port)] if port else [])]
        words += [*(["-U", user] if user else []), name]
        return shlex.join(words)
    words = ["mysql", "-h", host, *(["-P", str(port)] if port else [])]
    words += [*(["-u", user] if user else []), *(["-p"] if url.password else [])]
    return shlex.join([*words, "-e", f"CREATE DATABASE `{name}`"])


def _shown(url: URL | str) -> str:
    text = url if isinstance(url, str) else url.render_as_string(hide_password=False)
    return shown_url(text)


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
        shown = _shown(url)
        if current not in probe.get_all_versions():
            raise StudyError(
                f"the storage {shown} has Optuna schema {current}, newer than this Optuna "
                f"{optuna.__version__} knows (up to {head}); upgrade it: pip install -U optuna"
            )
        if path is None:
            raise StudyError(
                f"the storage {shown} has Optuna schema {current}, older than this Optuna's "
                f"{head}; with no search running on it, upgrade it once with: "
                f"optuna storage upgrade --storage '{shown}'"
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
    parsed = make_url(url)
    engine = sqlalchemy.create_engine(url, connect_args=_connect_args(parsed))
    try:
        return sqlalchemy.inspect(engine).has_table("version_info")
    finally:
        engine.dispose()


def _engine_kwargs(url: URL) -> dict[str, Any]:
    if url.get_backend_name() == "sqlite":
        return {"connect_args": {"timeout": BUSY_TIMEOUT}}
    # Long searches outlive idle server connections; test each before use.
    return {"pool_pre_ping": True, "connect_args": _connect_args(url)}


def _connect_args(url: URL) -> dict[str, Any]:
    """A server that does not answer is an error after :data:`CONNECT_TIMEOUT` seconds, not a
    hang; a ``connect_timeout`` in the URL's query stays."""
    driver = url.get_dialect().driver
    if driver not in _TIMEOUT_DRIVERS or "connect_timeout" in url.query:
        return {}
    return {"connect_timeout": CONNECT_TIMEOUT}


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
