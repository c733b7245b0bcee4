"""``export``, ``predict`` and ``best``: the best model of a study, and using it."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from carsearch.cli.common import (
    DEFAULTS,
    add_decision_flag,
    add_ensemble_flag,
    add_json_flag,
    print_summary,
)


def add_export(commands: Any) -> None:
    export = commands.add_parser(
        "export", help="refit a study's best trial as `run` did and write its model bundle"
    )
    export.add_argument("--study", help="the study (default: the storage's only study)")
    export.add_argument("--storage", default=DEFAULTS.storage, help="the study storage URL")
    export.add_argument(
        "--out",
        metavar="DIR",
        help="bundle folder: new, empty or a bundle it replaces (default: the one run wrote)",
    )
    export.add_argument("--data", help="the study's data file, if it has moved since the search")
    export.add_argument("--device", help="refit on this device instead of the study's")
    add_ensemble_flag(export, argparse.SUPPRESS)  # absent: the study's own setting
    add_decision_flag(export, argparse.SUPPRESS)
    add_json_flag(export)
    export.set_defaults(handler=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from carsearch.api import export_study
    from carsearch.storage.faults import storage_faults

    stored = {name: getattr(args, name) for name in ("ensemble", "decision") if name in args}
    with storage_faults(args.storage):
        result = export_study(
            args.study,
            storage=args.storage,
            out=args.out,
            data=args.data,
            device=args.device,
            **stored,
        )
    print_summary(result.summary, as_json=args.json)
    return 0


def add_predict(commands: Any) -> None:
    predict = commands.add_parser("predict", help="predict the rows of a CSV with a bundle")
    predict.add_argument("--model", required=True, metavar="DIR", help="a bundle folder")
    predict.add_argument("--input", required=True, metavar="CSV", help="rows to predict")
    predict.add_argument("--output", metavar="CSV", help="where to write (default stdout)")
    predict.add_argument(
        "--unseen",
        choices=("unknown", "error", "most_frequent"),
        default="unknown",
        help="a category not seen in training: the learned <unknown> code (default), stop, or "
        "its column's most frequent training value",
    )
    predict.set_defaults(handler=cmd_predict)


def cmd_predict(args: argparse.Namespace) -> int:
    from carsearch.bundle.predictor import load
    from carsearch.data.read import read_frame
    from carsearch.exceptions import DataError

    predictor = load(args.model, unseen=args.unseen)
    try:
        result = predictor.predict_frame(read_frame(args.input), first_line=2)
    except DataError as error:
        # The library calls a frame "input"; here it is a file the user named.
        message = str(error)
        if message.startswith("input: "):
            raise DataError(f"{args.input}: {message.removeprefix('input: ')}") from None
        raise
    result.to_csv(args.output or sys.stdout, index=False)
    return 0


def add_best(commands: Any) -> None:
    best = commands.add_parser("best", help="show a study's best trial and its bundle")
    best.add_argument("--study", help="the study (default: the storage's only study)")
    best.add_argument("--storage", default=DEFAULTS.storage, help="the study storage URL")
    add_json_flag(best)
    best.set_defaults(handler=cmd_best)


def cmd_best(args: argparse.Namespace) -> int:
    from carsearch.pipeline import summarize
    from carsearch.search.study import open_existing
    from carsearch.storage.faults import storage_faults

    with storage_faults(args.storage):
        summary = summarize(open_existing(args.study, args.storage), args.storage)
    print_summary(summary, as_json=args.json)
    return 0
