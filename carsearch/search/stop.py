"""A stop asked for by a signal (SIGTERM, Ctrl-C) or by the death of the parent process,
noted where every epoch checks it.

A signal handler raises ``KeyboardInterrupt`` wherever Python happens to be. When that is a
finalizer or a weakref callback, which the garbage collector runs anywhere, Python prints
"Exception ignored ..." and drops the exception: the stop would be lost, and the process
would go on training. So the handlers also note the stop here; each epoch of a trial checks
it (:func:`raise_if_asked`), and a dropped interrupt is not printed.

Nor may it land inside Optuna's own bookkeeping: interrupted while it records a finished
trial (``tell``), Optuna 5 ends in an ``UnboundLocalError`` traceback instead of the
interrupt. So while trials run (:func:`deferred`) a stop only raises inside the objective
(:func:`immediate`), where Optuna fails the trial cleanly; anywhere else it waits for the
next check: the start of the next trial, its next epoch, or the end of the trial before.

A ``--jobs`` worker also watches its parent (:func:`watch_parent`): once the parent is gone
(``kill -9``), the worker is an orphan whose results nobody collects, and the next check
stops it as a signal would. This check works wherever ``os.getppid`` does; on Linux the
parent's death also sends the worker SIGTERM at once (see ``carsearch.search.workers``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

_asked: list[int] = []
_parent: list[int] = []
#: One entry per open :func:`deferred` (``False``) or :func:`immediate` (``True``) block.
_raise_at_once: list[bool] = []


def ask(signum: int) -> None:
    """Note that signal ``signum`` asked this process to stop."""
    _asked.append(signum)
    if sys.unraisablehook is not _quiet:
        _previous.append(sys.unraisablehook)
        sys.unraisablehook = _quiet


def interrupt(signum: int, _frame: FrameType | None = None) -> None:
    """The handler of a stop signal: note it, and raise ``KeyboardInterrupt`` unless a
    :func:`deferred` block holds it for the next check.

    Raises:
        KeyboardInterrupt: outside :func:`deferred`, or inside :func:`immediate`.
    """
    ask(signum)
    if not _raise_at_once or _raise_at_once[-1]:
        raise KeyboardInterrupt


@contextmanager
def deferred() -> Iterator[None]:
    """While inside, a stop signal is noted, and raised at the next :func:`raise_if_asked`."""
    _raise_at_once.append(False)
    try:
        yield
    finally:
        _raise_at_once.pop()


@contextmanager
def immediate() -> Iterator[None]:
    """While inside (a trial's own work), a stop signal raises at once, as one already noted
    does on entry.

    Raises:
        KeyboardInterrupt: a stop was asked for before or while inside.
    """
    _raise_at_once.append(True)
    try:
        raise_if_asked()
        yield
    finally:
        _raise_at_once.pop()


def asked() -> bool:
    """Whether a signal, or the death of the watched parent, asked this process to stop."""
    return bool(_asked) or orphaned()


def watch_parent(pid: int) -> None:
    """Stop at the next check once process ``pid`` is no longer this process's parent."""
    _parent[:] = [pid]


def orphaned() -> bool:
    """Whether the parent given to :func:`watch_parent` is gone (this process was adopted)."""
    return bool(_parent) and os.getppid() != _parent[0]


def raise_if_asked() -> None:
    """Raise the ``KeyboardInterrupt`` of a stop that was asked for, in case it was dropped,
    or of a watched parent that died.

    Raises:
        KeyboardInterrupt: a signal, or the parent's death, asked this process to stop.
    """
    if asked():
        raise KeyboardInterrupt


def forget() -> None:
    """Start afresh (a new command in the same process)."""
    _asked.clear()
    _parent.clear()
    _raise_at_once.clear()


_previous: list[Any] = []


def _quiet(unraisable: Any) -> None:
    """Drop the interrupt a finalizer swallowed (the next epoch raises it); pass on the rest."""
    if _asked and isinstance(unraisable.exc_value, KeyboardInterrupt):
        return
    _previous[-1](unraisable)
