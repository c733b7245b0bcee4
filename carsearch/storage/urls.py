"""Storage URLs: parsed, with a driver that is installed, shown to people without a password."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy.engine import URL, make_url

from carsearch.exceptions import ConfigError
from carsearch.storage.sqlite import busy_timeout, sqlite_path
from carsearch.urls import shown_url

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
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306}
#: MySQL's client error codes: no answer (2002, 2003, 2005), refused user, no database.
_EXAMPLE_URLS = "sqlite:///studies/carsearch.db or postgresql://USER@HOST:5432/DATABASE"


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
            f"not a storage URL: {shown_url(url)!r}; expected e.g. {_EXAMPLE_URLS}"
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
                f"the storage URL {shown(parsed)} names {parsed.drivername!r}, a database or "
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
            f"no {backend} driver is installed for the storage {shown(url)}: pip install {remedy}"
        )
    return (
        f"the storage {shown(url)} needs the {driver} driver, which is not installed: "
        f"pip install {remedy}"
    )


def shown(url: URL | str) -> str:
    """``url`` for people: its password masked (:func:`carsearch.urls.shown_url`)."""
    return shown_url(url if isinstance(url, str) else url.render_as_string(hide_password=False))


def engine_kwargs(url: URL) -> dict[str, Any]:
    if url.get_backend_name() == "sqlite":
        return {"connect_args": {"timeout": busy_timeout()}}
    # Long searches outlive idle server connections; test each before use.
    return {"pool_pre_ping": True, "connect_args": connect_args(url)}


def connect_args(url: URL) -> dict[str, Any]:
    """A server that does not answer is an error after :data:`CONNECT_TIMEOUT` seconds, not a
    hang; a ``connect_timeout`` in the URL's query stays."""
    driver = url.get_dialect().driver
    if driver not in _TIMEOUT_DRIVERS or "connect_timeout" in url.query:
        return {}
    return {"connect_timeout": CONNECT_TIMEOUT}


def is_server(url: str) -> bool:
    """Whether ``url`` names a database server, which other machines may share, not SQLite."""
    return make_url(url).get_backend_name() != "sqlite"


def studies_dir(storage: str) -> Path:
    """The SQLite file's folder, or ``studies`` (relative) for other storages."""
    path = sqlite_path(make_url(storage))
    return path.parent if path is not None else Path("studies")
