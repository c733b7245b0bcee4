"""``dashboard`` and ``report``: looking at a study."""

from __future__ import annotations

import argparse
from typing import Any

from carsearch.cli.common import DEFAULTS


def add_dashboard(commands: Any) -> None:
    dashboard = commands.add_parser("dashboard", help="serve optuna-dashboard on the studies")
    dashboard.add_argument("--storage", default=DEFAULTS.storage, help="the study storage URL")
    dashboard.add_argument(
        "--host", default="127.0.0.1", help="interface to listen on (default: this machine only)"
    )
    dashboard.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    dashboard.set_defaults(handler=cmd_dashboard)


def cmd_dashboard(args: argparse.Namespace) -> int:
    from carsearch.inspect.dashboard import dashboard_url, open_dashboard, serve_until_interrupted
    from carsearch.storage.faults import storage_faults
    from carsearch.urls import shown_url

    with storage_faults(args.storage):
        server = open_dashboard(args.storage, host=args.host, port=args.port)
    print(
        f"optuna-dashboard on {shown_url(args.storage)}: open {dashboard_url(server)}", flush=True
    )
    print("Ctrl-C stops it", flush=True)
    serve_until_interrupted(server)
    return 0


def add_report(commands: Any) -> None:
    report = commands.add_parser("report", help="write a study's report as one HTML file")
    report.add_argument("--study", help="the study (default: the storage's only study)")
    report.add_argument("--storage", default=DEFAULTS.storage, help="the study storage URL")
    report.add_argument(
        "--out",
        help="the HTML file, new or a carsearch report it replaces (default: STUDY-report.html)",
    )
    report.set_defaults(handler=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from carsearch.inspect.report import default_report_path, write_report
    from carsearch.search.study import open_existing
    from carsearch.storage.faults import storage_faults

    with storage_faults(args.storage):
        study = open_existing(args.study, args.storage)
        path = write_report(study, args.out or default_report_path(study.study_name))
    print(f"report of study {study.study_name!r} written to {path}")
    return 0
