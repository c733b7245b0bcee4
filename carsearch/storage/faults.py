"""A storage that fails mid-search (a full disk, a lost server): one line, nothing lost.

Optuna reports such a failure badly: the write that fails is retried as the trial's failure,
fails again, and what reaches the caller is an ``AssertionError`` with the database's error
deep in its context. :func:`storage_faults` finds that error and raises one
:class:`~carsearch.exceptions.StorageError` line instead: which storage, what failed, and
that the same command resumes. Finished trials are committed rows, untouched by a write that
failed; the running trial is failed if the storage still takes a one-row write, and otherwise
by its stale heartbeat when a later run starts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import sqlalchemy

from carsearch.exceptions import CarsearchError, StorageError
from carsearch.storage.errors import driver_message
from carsearch.storage.urls import shown

logger = logging.getLogger("carsearch")

_FULL = ("disk is full", "no space left", "disk full", "quota exceeded")
_WRITES = ("INSERT", "UPDATE", "DELETE")


@contextmanager
def storage_faults(url: str, on_fault: Callable[[], object] | None = None) -> Iterator[None]:
    """Turn a database error of storage ``url`` raised inside into one :class:`StorageError`.

    ``on_fault`` runs first, to record what it can (the running trial's failure); its own
    errors are logged at debug level, never raised.
    """
    try:
        yield
    except CarsearchError:
        raise
    except Exception as error:
        cause = database_error(error)
        if cause is None:
            raise
        if on_fault is not None:
            quietly(on_fault)
        raise StorageError(fault_message(url, cause)) from error


def database_error(error: BaseException) -> BaseException | None:
    """The database error that ``error`` is, was raised from, or was raised while handling."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, sqlalchemy.exc.SQLAlchemyError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def fault_message(url: str, error: BaseException) -> str:
    """``cannot write to the storage URL: WHAT; finished trials are kept: HOW TO RESUME``."""
    where = shown(url)
    original = getattr(error, "orig", None) or error
    detail = driver_message(original)
    statement = str(getattr(error, "statement", None) or "").lstrip().upper()
    action = "write to" if statement.startswith(_WRITES) else "use"
    full = any(words in detail.lower() for words in _FULL)
    remedy = "free disk space" if full else "once the storage works again"
    return (
        f"cannot {action} the storage {where}: {detail}; the finished trials are kept: "
        f"{remedy}, then run the same command again to continue"
    )


def quietly(action: Callable[[], object]) -> None:
    try:
        action()
    except Exception as error:  # the storage is failing: recording more is best effort
        logger.debug("could not record the failure in the storage: %s", error)
