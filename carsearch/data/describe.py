"""What carsearch makes of a table, in words: ``carsearch describe`` and a run's first lines."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa

from carsearch.config import ReadOptions
from carsearch.data.kinds import MISSING_TOKENS, NUMERIC
from carsearch.data.read import read_table
from carsearch.data.schema import MISSING, REGRESSION
from carsearch.data.table import Table, as_text
from carsearch.data.target import MAX_AUTO_CLASSES

if TYPE_CHECKING:  # typing.Unpack is Python 3.11's; annotations are not evaluated
    from typing_extensions import Unpack

#: Classes listed by name; the rest are counted.
MAX_CLASSES_SHOWN = 20


def kinds_line(table: Table) -> str:
    """One line: how many columns of each kind, which ones, and what was dropped."""
    parts = []
    for kind, names in (("categorical", table.categorical), ("numeric", table.numeric)):
        shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        parts.append(f"{len(names)} {kind}" + (f" ({shown})" if names else ""))
    if table.dropped:
        parts.append(f"dropped {', '.join(table.dropped)}")
    return f"{table.source}: target {table.target!r}; features: " + "; ".join(parts)


def task_line(table: Table, requested: str, metric: str) -> str:
    """One line: the task, why (the ``--task auto`` rule, or the flag), and the metric."""
    if table.task == REGRESSION:
        what = f"regression: target {table.target!r} is predicted as numbers"
        rule = f"numbers with fractions or more than {MAX_AUTO_CLASSES} values"
    else:
        what = f"classification: target {table.target!r} has {len(table.class_counts())} classes"
        rule = f"text, or whole numbers with at most {MAX_AUTO_CLASSES} values"
    why = f"--task {requested}" if requested != "auto" else f"--task auto: {rule}"
    return f"task {what} ({why}); searched for the best validation {metric}"


def describe_file(path: str, target: str | None = None, **options: Unpack[ReadOptions]) -> str:
    """:func:`describe_table` of a file, read by :func:`~carsearch.data.read.read_table` with
    ``options``, each column's cells counted as the file spells them before it is converted
    (a large file fits as it does for ``run``).

    Raises:
        DataError: as :func:`~carsearch.data.read.read_table`.
    """
    counts: dict[str, tuple[int, int]] = {}

    def count(name: str, column: pa.ChunkedArray) -> None:
        counts[name] = text_counts(as_text(column))

    return describe_table(read_table(path, target, on_column=count, **options), counts)


def text_counts(values: pd.Series) -> tuple[int, int]:
    """A column's distinct values and missing ones, as its cells spell them."""
    text = values.astype(str).str.strip()
    missing = text.isin(MISSING_TOKENS) | values.isna()
    return int(text[~missing].nunique()), int(missing.sum())


def describe_table(table: Table, counts: dict[str, tuple[int, int]] | None = None) -> str:
    """Each column's kind, distinct and missing counts and what happens to it; the classes.

    ``counts`` are each column's distinct and missing values as read (a dropped column's
    are known only from there); by default they come from ``table``'s own columns.
    """
    if counts is None:
        counts = {str(name): _table_counts(table.frame[name]) for name in table.frame.columns}
    rows = [("column", "kind", "distinct", "missing", "note")]
    for name, (distinct, missing) in counts.items():
        kind, note = _kind_and_note(table, name)
        rows.append((name, kind, str(distinct), str(missing), note))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True))
        + f"  {row[4]}"
        for row in rows
    ]
    lines += ["", *_target_lines(table)]
    return "\n".join(line.rstrip() for line in lines)


def _table_counts(values: pd.Series) -> tuple[int, int]:
    if pd.api.types.is_float_dtype(values):
        return int(values.nunique()), int(values.isna().sum())
    missing = values == MISSING
    return int(values[~missing].nunique()), int(missing.sum())


def _target_lines(table: Table) -> list[str]:
    """The classes and their counts, or a numeric target's range."""
    if table.task == REGRESSION:
        values = table.frame[table.target]
        return [
            f"{len(table.frame)} rows; target {table.target!r}, numbers to predict (regression)",
            f"  min {values.min():.6g}, median {values.median():.6g}, max {values.max():.6g}, "
            f"mean {values.mean():.6g}, {values.nunique()} distinct",
        ]
    counts = table.class_counts()
    lines = [f"{len(table.frame)} rows; target {table.target!r}, {len(counts)} classes"]
    shown = sorted(counts.items(), key=lambda item: -item[1])[:MAX_CLASSES_SHOWN]
    lines += [f"  {label}: {count}" for label, count in shown]
    if len(counts) > MAX_CLASSES_SHOWN:
        lines.append(f"  ... and {len(counts) - MAX_CLASSES_SHOWN} more")
    return lines


def _kind_and_note(table: Table, name: str) -> tuple[str, str]:
    if name == table.target:
        if table.task == REGRESSION:
            return "target", "numbers (regression)"
        return "target", f"{table.frame[name].nunique()} classes"
    if name in table.dropped:
        return "dropped", table.dropped[name]
    kind = table.kinds[name]
    if kind == NUMERIC:
        return kind, "missing values: median + indicator" if table.frame[name].isna().any() else ""
    has_missing = (table.frame[name] == MISSING).any()
    notes = [table.notes[name]] if name in table.notes else []
    notes += [f"missing values: category {MISSING}"] if has_missing else []
    return kind, "; ".join(notes)
