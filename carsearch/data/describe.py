"""What carsearch makes of a table, in words: ``carsearch describe`` and a run's first lines."""

from __future__ import annotations

import pandas as pd

from carsearch.data.kinds import MISSING_TOKENS, NUMERIC
from carsearch.data.schema import MISSING, REGRESSION
from carsearch.data.table import Table

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


def describe_table(table: Table, raw: pd.DataFrame) -> str:
    """Each column's kind, distinct and missing counts and what happens to it; the classes.

    ``raw`` is the file as read (strings): a dropped column's counts come from it.
    """
    rows = [("column", "kind", "distinct", "missing", "note")]
    for name in raw.columns:
        values = raw[name].astype(str).str.strip()
        missing = int(values.isin(MISSING_TOKENS).sum())
        distinct = int(values[~values.isin(MISSING_TOKENS)].nunique())
        kind, note = _kind_and_note(table, str(name))
        rows.append((str(name), kind, str(distinct), str(missing), note))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True))
        + f"  {row[4]}"
        for row in rows
    ]
    lines += ["", *_target_lines(table)]
    return "\n".join(line.rstrip() for line in lines)


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
    return kind, f"missing values: category {MISSING}" if has_missing else ""
