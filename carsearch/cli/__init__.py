"""The ``carsearch`` command: a thin shell over the library.

Library errors become one ``error: ...`` line on stderr and exit status 1 (2 for bad usage,
130 for Ctrl-C); ``--debug`` shows the traceback instead. Each subcommand lives in the module
of its topic and imports the library only when it runs, so ``carsearch --help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from carsearch.cli import bundles, data, inspection, listing, search
from carsearch.exceptions import CarsearchError


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(debug=args.debug)
    try:
        status: int = args.handler(args)
        return status
    except KeyboardInterrupt:
        print("interrupted: finished trials are stored; run again to continue", file=sys.stderr)
        return 130
    except (CarsearchError, OSError) as error:
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 1


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
