"""A stop asked for by a signal (SIGTERM, Ctrl-C), noted where every epoch checks it.

A signal handler raises ``KeyboardInterrupt`` wherever Python happens to be. When that is a
finalizer or a weakref callback, which the garbage collector runs anywhere, Python prints
"Exception ignored ..." and drops the exception: the stop would be lost, and the process
would go on training. So the handlers also note the stop here; each epoch of a trial checks
it (:func:`raise_if_asked`), and a dropped interrupt is not printed.
"""

from __future__ import annotations

import sys
from typing import Any

_asked: list[int] = []


def ask(signum: int) -> None:
    """Note that signal ``signum`` asked this process to stop."""
    _asked.append(signum)
    if sys.unraisablehook is not _quiet:
        _previous.append(sys.unraisablehook)
        sys.unraisablehook = _quiet


def asked() -> bool:
    """Whether a signal asked this process to stop."""
    return bool(_asked)


def raise_if_asked() -> None:
    """Raise the ``KeyboardInterrupt`` of a stop that was asked for, in case it was dropped.

    Raises:
        KeyboardInterrupt: a signal asked this process to stop.
    """
    if _asked:
        raise KeyboardInterrupt


def forget() -> None:
    """Start afresh (a new command in the same process)."""
    _asked.clear()


_previous: list[Any] = []


def _quiet(unraisable: Any) -> None:
    """Drop the interrupt a finalizer swallowed (the next epoch raises it); pass on the rest."""
    if _asked and isinstance(unraisable.exc_value, KeyboardInterrupt):
        return
    _previous[-1](unraisable)
