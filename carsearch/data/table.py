"""A validated table: its feature columns by kind, and the name of its target column.

Categorical columns hold stripped strings (a missing value is the category ``<missing>``),
numeric columns float64 (a missing value is NaN), the target its class names.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from carsearch.data.kinds import (
    CATEGORICAL,
    MISSING_TOKENS,
    NUMERIC,
    Overrides,
    finite_numbers,
    infer_kinds,
)
from carsearch.data.schema import CLASSIFICATION, MISSING
from carsearch.data.target import decide_task
from carsearch.exceptions import DataError

#: Rows hashed at a time by :meth:`Table.fingerprint`, to bound its memory.
_HASH_CHUNK = 100_000


@dataclass(frozen=True)
class Table:
    """A table ready to encode: kept features by kind, dropped ones with their reasons.

    Example:
        >>> import pandas as pd
        >>> frame = pd.DataFrame({"size": ["1.5", "2", "", "4"], "t": ["a", "b", "a", "b"]})
        >>> make_table(frame, "t", source="example").kinds
        {'size': 'numeric'}
    """

    frame: pd.DataFrame
    target: str
    source: str
    kinds: dict[str, str] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)
    task: str = CLASSIFICATION
    first_line: int = 2

    @property
    def features(self) -> pd.DataFrame:
        return self.frame[list(self.kinds)]

    @property
    def categorical(self) -> list[str]:
        return [name for name, kind in self.kinds.items() if kind == CATEGORICAL]

    @property
    def numeric(self) -> list[str]:
        return [name for name, kind in self.kinds.items() if kind == NUMERIC]

    def class_counts(self) -> dict[str, int]:
        counts = self.frame[self.target].value_counts().sort_index()
        return {str(label): int(n) for label, n in counts.items()}

    def target_histogram(self, bins: int = 30) -> dict[str, list[float]]:
        """A numeric target's histogram: ``bins`` equal-width bins' edges and counts."""
        counts, edges = np.histogram(self.frame[self.target].to_numpy(np.float64), bins=bins)
        return {"edges": edges.tolist(), "counts": counts.astype(float).tolist()}

    def describe(self) -> dict[str, object]:
        """What a study records of its data: source, rows, target, kinds, and the class
        counts or (numbers) the target's histogram."""
        classes = self.task == CLASSIFICATION
        return {
            "source": self.source,
            "rows": len(self.frame),
            "target": self.target,
            "task": self.task,
            "kinds": dict(self.kinds),
            "dropped": dict(self.dropped),
            "class_counts": self.class_counts() if classes else {},
            "target_histogram": {} if classes else self.target_histogram(),
        }

    def fingerprint(self) -> str:
        """A sha256 of the table's content and column order (not of the file's bytes).

        Row by row: the column names joined by ``\\x1f``, then each row as ``\\x1e`` and its
        cells joined by ``\\x1f`` (numbers as Python writes them, ``nan`` when missing), so a
        table of strings hashes as carsearch 0.1 hashed it and its studies still resume.
        """
        digest = hashlib.sha256("\x1f".join(self.frame.columns).encode())
        for start in range(0, len(self.frame), _HASH_CHUNK):
            text = self.frame.iloc[start : start + _HASH_CHUNK].astype(str)
            rows = text.iloc[:, 0].str.cat([text[name] for name in text.columns[1:]], sep="\x1f")
            digest.update(("\x1e" + rows).str.cat().encode())
        return digest.hexdigest()


def make_table(
    frame: pd.DataFrame,
    target: str | None = None,
    *,
    source: str,
    numeric: Sequence[str] = (),
    categorical: Sequence[str] = (),
    task: str = "auto",
    first_line: int = 2,
) -> Table:
    """Validate a DataFrame of strings as a table, deciding each feature column's kind and
    whether the target is classes or numbers (see :mod:`carsearch.data.target`).

    Args:
        frame: the cells as read, strings (or values that print as the file wrote them).
        target: the target column's name, or its 1-based number; default the last column.
        source: what to call the table in messages (its file's path).
        numeric: columns to read as numbers whatever the rule says.
        categorical: columns to read as categories whatever the rule says (kept even when
            the rule would drop them).
        task: ``auto``, ``classification`` or ``regression``.
        first_line: the file line of the first row, for messages (2 after a header).

    Raises:
        DataError: naming the source and the column, value or rule that failed.
    """
    _check_shape(frame, source)
    target = resolve_target(frame, target, source)
    frame = frame.astype(str).map(str.strip)
    task, target_values = decide_task(
        frame[target], task, name=target, source=source, first_line=first_line
    )
    overrides = Overrides(numeric, categorical)
    kinds = infer_kinds(frame, target, source=source, overrides=overrides, first_line=first_line)
    columns: dict[str, pd.Series] = {}
    for name, kind in kinds.kinds.items():
        values = frame[name]
        if kind == NUMERIC:
            what = f"{source}: column {name!r} is numeric"
            columns[name] = pd.Series(finite_numbers(values, what, first_line), name=name)
        else:
            columns[name] = missing_to_category(values)
    columns[target] = target_values
    kept = [name for name in frame.columns if name in columns]
    table = pd.DataFrame({name: columns[name] for name in kept}).reset_index(drop=True)
    return Table(table, str(target), source, kinds.kinds, kinds.dropped, task, first_line)


def resolve_target(frame: pd.DataFrame, target: str | None, source: str) -> str:
    """The target column's name: the one given, the 1-based column number given, or the last."""
    columns = [str(name) for name in frame.columns]
    if target is None:
        return columns[-1]
    if target in columns:
        return target
    if target.isdigit() and 1 <= int(target) <= len(columns):
        return columns[int(target) - 1]
    raise DataError(
        f"{source}: no target column {target!r}; columns are {', '.join(columns)} "
        f"(or give a column number, 1 to {len(columns)})"
    )


def missing_to_category(values: pd.Series) -> pd.Series:
    """Feature values as stripped strings, missing ones (NaN, empty, ``?``...) as ``MISSING``."""
    text = values.astype(str).str.strip()
    return text.mask(values.isna() | text.isin(MISSING_TOKENS), MISSING)


def _check_shape(frame: pd.DataFrame, source: str) -> None:
    if frame.shape[1] < 2:
        raise DataError(f"{source}: need at least one feature column and a target column")
    if frame.empty:
        raise DataError(f"{source}: the table has a header but no rows")
    unnamed = [i + 1 for i, name in enumerate(frame.columns) if not str(name).strip()]
    if unnamed:
        raise DataError(f"{source}: header field {unnamed[0]} is empty; name every column")
    duplicated = frame.columns[frame.columns.duplicated()].tolist()
    if duplicated:
        raise DataError(f"{source}: column names must be unique; repeated: {duplicated}")
