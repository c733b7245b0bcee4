"""``carsearch describe``: what a run would make of a table, without touching a study."""

from __future__ import annotations

import argparse
from typing import Any

from carsearch.cli.common import add_table_options, config_options
from carsearch.config import RunConfig


def add_describe(commands: Any) -> None:
    describe = commands.add_parser(
        "describe",
        help="show each column's kind, distinct and missing counts, what is dropped, the classes",
    )
    add_table_options(describe)
    describe.set_defaults(handler=cmd_describe)


def cmd_describe(args: argparse.Namespace) -> int:
    from carsearch import plugins
    from carsearch.data.describe import describe_file, describe_table

    if args.data is None:
        print(describe_table(plugins.instance("datasets", args.dataset).load()))
        return 0
    config = RunConfig(**config_options(args, RunConfig))
    print(describe_file(args.data, config.target, **config.read_options))
    return 0
