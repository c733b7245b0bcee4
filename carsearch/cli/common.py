"""What the subcommands share: the defaults, the summary printer, option parsers."""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from carsearch.config import TASKS, RunConfig
from carsearch.summary import Summary, format_summary

#: The run options' defaults come from RunConfig alone, so the CLI and the API agree.
DEFAULTS = RunConfig()


def print_summary(summary: Summary, *, as_json: bool) -> None:
    print(json.dumps(summary.to_dict()) if as_json else format_summary(summary))


def config_options(args: argparse.Namespace, config_type: type) -> dict[str, Any]:
    """The parsed options that are fields of ``config_type``."""
    fields = {field.name for field in dataclasses.fields(config_type)}
    return {key: value for key, value in vars(args).items() if key in fields}


def flags_of(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Each option's destination and its flag: ``{"n_trials": "--trials", ...}``."""
    return {a.dest: a.option_strings[-1] for a in parser._actions if a.option_strings}


def named_by_flag(message: str, flags: dict[str, str]) -> str:
    """A configuration error as the command line says it: ``n_trials must be ...`` becomes
    ``--trials must be ...`` (the field a message starts with, renamed by its flag)."""
    field, _, rest = message.partition(" ")
    return f"{flags[field]} {rest}" if field in flags else message


def ensemble_size(text: str) -> int | None:
    """``--ensemble``'s value: a count of best trials, or ``none``."""
    if text.strip().lower() == "none":
        return None
    try:
        return int(text)
    except ValueError:
        rule = f"must be a whole number or 'none', not {text!r}"
        raise argparse.ArgumentTypeError(rule) from None


def add_ensemble_flag(parser: Any, default: Any) -> None:
    """``--ensemble N|none``: the best trials a post-hoc ensemble is selected from."""
    parser.add_argument(
        "--ensemble",
        type=ensemble_size,
        default=default,
        metavar="N|none",
        help="export the greedy ensemble (Caruana) of the N best trials' validation "
        f"predictions; none: the best trial alone (default {DEFAULTS.ensemble})",
    )


def add_decision_flag(parser: Any, default: Any) -> None:
    """``--decision tuned|argmax``: how a classifier picks its class."""
    parser.add_argument(
        "--decision",
        choices=("tuned", "argmax"),
        default=default,
        help="tuned: argmax of the probabilities times per-class weights tuned on validation "
        f"for macro-F1; argmax: the most probable class (default {DEFAULTS.decision})",
    )


def add_json_flag(parser: Any, what: str = "the summary as one JSON object") -> None:
    """``--json``: print machine-readable output instead of text."""
    parser.add_argument("--json", action="store_true", help=f"print {what}")


def add_table_options(group: Any) -> None:
    """The options that say how to read a table: ``run`` and ``describe`` share them."""
    group.add_argument("--data", help="a CSV or TSV file (default: the --dataset plugin's data)")
    group.add_argument(
        "--target", help="the target column of --data, by name or 1-based number (default: last)"
    )
    group.add_argument(
        "--no-header",
        dest="header",
        action="store_false",
        help="the file has no header line: columns are c1..cN, or --columns",
    )
    group.add_argument("--columns", type=names, metavar="A,B", help="names for --no-header")
    group.add_argument(
        "--task",
        choices=TASKS,
        default=DEFAULTS.task,
        help="classification or regression; auto (default): numbers with many values or with "
        "fractions are predicted as numbers, anything else as classes",
    )
    group.add_argument(
        "--numeric", type=names, default=(), metavar="A,B", help="read these columns as numbers"
    )
    group.add_argument(
        "--categorical",
        type=names,
        default=(),
        metavar="A,B",
        help="read these columns as categories (kept even if constant or an identifier)",
    )
    group.add_argument(
        "--dataset",
        default=DEFAULTS.dataset,
        help=f"a data-set plugin's name, used without --data (default {DEFAULTS.dataset})",
    )


def names(text: str) -> tuple[str, ...]:
    """A comma-separated list of names."""
    found = tuple(name.strip() for name in text.split(",") if name.strip())
    if not found:
        raise argparse.ArgumentTypeError(f"expected names separated by commas, got {text!r}")
    return found
