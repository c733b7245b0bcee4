"""SQLite for many worker processes: WAL mode, the write lock taken at ``BEGIN``, backups.

The file is put in WAL mode and every transaction begins with ``BEGIN IMMEDIATE`` under a
60 s busy timeout. Without the latter, a transaction that reads and then writes (most of
Optuna's) fails at once with "database is locked" when another process committed in between:
SQLite cannot wait its way out of a stale snapshot, so the busy timeout never applies. Taking
the write lock at ``BEGIN`` turns that failure into a short wait.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy.engine import URL, Engine

#: Seconds a SQLite connection waits for the write lock before giving up.
BUSY_TIMEOUT = 60.0
#: The environment variable that sets another wait, in seconds (tests of a held lock).
BUSY_TIMEOUT_VARIABLE = "CARSEARCH_SQLITE_BUSY_TIMEOUT"


def busy_timeout() -> float:
    """Seconds to wait for SQLite's write lock: :data:`BUSY_TIMEOUT`, or the environment's."""
    return float(os.environ.get(BUSY_TIMEOUT_VARIABLE) or BUSY_TIMEOUT)


def sqlite_path(url: URL) -> Path | None:
    """The file of a SQLite URL; ``None`` for in-memory SQLite and other databases."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def enable_wal(path: Path) -> None:
    """Put a SQLite file in WAL mode (a property of the file): readers stop blocking writers."""
    with closing(sqlite3.connect(path, timeout=busy_timeout())) as connection:
        connection.execute("PRAGMA journal_mode=WAL")


def tune_sqlite(engine: Engine) -> None:
    """Make every transaction of ``engine`` take SQLite's write lock at once, and wait for it."""
    sqlalchemy.event.listen(engine, "connect", _on_sqlite_connect)
    sqlalchemy.event.listen(engine, "begin", _on_sqlite_begin)
    engine.dispose()  # pooled connections were made before the listeners


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # SQLAlchemy, not the sqlite3 module, decides when transactions begin (see _on_begin).
    dbapi_connection.isolation_level = None
    dbapi_connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout() * 1000)}")
    # With WAL this loses no committed data on a crash of the process, only on power loss,
    # and holds the write lock for less time.
    dbapi_connection.execute("PRAGMA synchronous = NORMAL")


def _on_sqlite_begin(connection: sqlalchemy.Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def backup_sqlite(path: Path, suffix: str) -> Path:
    """A consistent copy of a SQLite file (WAL contents included) at ``PATH.suffix``."""
    backup = path.with_name(f"{path.name}.{suffix}")
    with closing(sqlite3.connect(path, timeout=busy_timeout())) as source:
        with closing(sqlite3.connect(backup)) as target:
            source.backup(target)
    return backup
