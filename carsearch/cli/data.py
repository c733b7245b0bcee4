"""``carsearch describe``: what a run would make of a table, without touching a study."""

from __future__ import annotations

import argparse
from typing import Any

from carsearch.cli.common import add_table_options


def add_describe(commands: Any) -> None:
    describe = commands.add_parser(
        "describe",
        help="show each column's kind, distinct and missing counts, what is dropped, the classes",
    )
    add_table_options(describe)
    describe.set_defaults(handler=cmd_describe)


def cmd_describe(args: argparse.Namespace) -> int:
    from carsearch import plugins
    from carsearch.data.describe import describe_table
    from carsearch.data.read import read_frame
    from carsearch.data.table import make_table

    if args.data is None:
        table = plugins.instance("datasets", args.dataset).load()
        print(describe_table(table, table.frame))
        return 0
    raw = read_frame(args.data, header=args.header, columns=args.columns)
    table = make_table(
        raw,
        args.target,
        source=args.data,
        numeric=args.numeric,
        categorical=args.categorical,
        task=args.task,
        first_line=2 if args.header else 1,
    )
    print(describe_table(table, raw))
    return 0
