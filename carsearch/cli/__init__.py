"""The ``carsearch`` command: a thin shell over the library.

Library errors become one ``error: ...`` line on stderr and exit status 1 (2 for bad usage,
130 for Ctrl-C, 143 for SIGTERM); ``--debug`` shows the traceback instead. SIGTERM, what
SLURM, Kubernetes and systemd send to stop a job, is handled as Ctrl-C is: the running trial
is failed at once, finished trials are kept, and the same command continues the study.

Each subcommand lives in the module of its topic and imports the library only when it runs,
so ``carsearch --help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType

from carsearch import __version__
from carsearch.cli import bundles, data, inspection, listing, search
from carsearch.exceptions import CarsearchError
from carsearch.search import stop


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(debug=args.debug)
    terminated: list[int] = []
    stop.forget()
    try:
        with _stop_signals_as_interrupt(terminated):
            status: int = args.handler(args)
        return status
    except KeyboardInterrupt:
        if terminated:
            print(
                "terminated (SIGTERM): finished trials are stored; run again to continue",
                file=sys.stderr,
            )
            return 143
        print("interrupted: finished trials are stored; run again to continue", file=sys.stderr)
        return 130
    except (CarsearchError, OSError) as error:
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 1


@contextmanager
def _stop_signals_as_interrupt(received: list[int]) -> Iterator[None]:
    """While inside, SIGTERM raises KeyboardInterrupt (once) and is recorded in ``received``;
    both it and Ctrl-C wait while Optuna records a trial (:func:`carsearch.search.stop.interrupt`).

    Optuna fails the running trial on KeyboardInterrupt and keeps the finished ones, as for
    Ctrl-C. A second SIGTERM (systemd and SLURM signal every process of a job; the parent of
    ``--jobs`` forwards its own) must not interrupt that last write, so it is ignored.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def terminate(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        received.append(signum)
        stop.interrupt(signum, frame)

    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, terminate)}
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not if ignored
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, stop.interrupt)
    try:
        yield
    finally:
        for each, handler in previous.items():
            signal.signal(each, signal.SIG_DFL if handler is None else handler)


def _configure_logging(*, debug: bool) -> None:
    """carsearch's own progress lines at INFO; other libraries only when they warn."""
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING, format="%(name)s: %(message)s"
    )
    logging.getLogger("carsearch").setLevel(logging.DEBUG if debug else logging.INFO)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="carsearch", description="Optuna search over embedding MLPs for tables."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument("--version", action="version", version=f"carsearch {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    search.add_run(commands)
    data.add_describe(commands)
    bundles.add_export(commands)
    bundles.add_predict(commands)
    bundles.add_best(commands)
    inspection.add_dashboard(commands)
    inspection.add_report(commands)
    listing.add_plugins(commands)
    return parser
