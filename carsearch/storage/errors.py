"""One-line errors for what goes wrong when a storage opens.

A URL that does not parse, a driver that is not installed (naming the extra that installs
it), a server that does not answer, a database that does not exist, credentials the server
refuses: each is one :class:`~carsearch.exceptions.StudyError` line.
"""

from __future__ import annotations

import re
import shlex
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy
from sqlalchemy.engine import URL

from carsearch.exceptions import StudyError
from carsearch.storage.urls import CONNECT_TIMEOUT, DEFAULT_PORTS, shown

#: MySQL's client error codes: no answer (2002, 2003, 2005), refused user, no database.
_MYSQL_NO_ANSWER = frozenset({2002, 2003, 2005, 2006, 2013})
_MYSQL_REFUSED = frozenset({1044, 1045, 1698})
_MYSQL_NO_DATABASE = 1049


@contextmanager
def opening_errors(url: URL) -> Iterator[None]:
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
    where = f"{url.host}:{url.port or DEFAULT_PORTS.get(backend, '')}"
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
    return StudyError(f"cannot open the storage {shown(url)}: {detail}")


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
