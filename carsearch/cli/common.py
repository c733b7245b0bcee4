"""What the subcommands share: the defaults, the summary printer, option parsers."""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from carsearch.config import RunConfig
from carsearch.summary import Summary, format_summary

#: The run options' defaults come from RunConfig alone, so the CLI and the API agree.
DEFAULTS = RunConfig()


def print_summary(summary: Summary, *, as_json: bool) -> None:
    print(json.dumps(summary.to_dict()) if as_json else format_summary(summary))


def config_options(args: argparse.Namespace, config_type: type) -> dict[str, Any]:
    """The parsed options that are fields of ``config_type``."""
    fields = {field.name for field in dataclasses.fields(config_type)}
    return {key: value for key, value in vars(args).items() if key in fields}


def add_json_flag(parser: Any, what: str = "the summary as one JSON object") -> None:
    """``--json``: print machine-readable output instead of text."""
    parser.add_argument("--json", action="store_true", help=f"print {what}")


def names(text: str) -> tuple[str, ...]:
    """A comma-separated list of names."""
    found = tuple(name.strip() for name in text.split(",") if name.strip())
    if not found:
        raise argparse.ArgumentTypeError(f"expected names separated by commas, got {text!r}")
    return found
