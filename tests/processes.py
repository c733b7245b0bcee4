"""Helpers for tests that run carsearch as a real process."""

from __future__ import annotations

import signal


def restore_sigint() -> None:
    """``preexec_fn`` giving a child the default Ctrl-C behaviour.

    A process started from a background job (as CI and ``cmd &`` do) inherits SIGINT ignored,
    and Python then installs no KeyboardInterrupt handler: a Ctrl-C test would hang.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
