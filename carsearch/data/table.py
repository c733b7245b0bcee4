"""A validated table: a DataFrame of strings and the name of its target column."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from carsearch.data.schema import MISSING, Column, Schema
from carsearch.exceptions import DataError

_MISSING_TOKENS = frozenset({"", "?", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"})


@dataclass(frozen=True)
class Table:
    """A categorical table: every cell a string, one column the target."""

    frame: pd.DataFrame
    target: str
    source: str

    @property
    def features(self) -> pd.DataFrame:
        return self.frame.drop(columns=[self.target])

    def schema(self) -> Schema:
        """Vocabularies sorted, so the same data always gives the same codes."""
        columns = tuple(
            Column(str(name), tuple(sorted(self.frame[name].unique())))
            for name in self.frame.columns
            if name != self.target
        )
        classes = tuple(sorted(self.frame[self.target].unique()))
        return Schema(columns=columns, target=self.target, classes=classes)

    def describe(self) -> dict[str, object]:
        """Source, row count, target and class counts: what a study records of its data."""
        counts = self.frame[self.target].value_counts().sort_index()
        return {
            "source": self.source,
            "rows": len(self.frame),
            "target": self.target,
            "class_counts": {str(label): int(n) for label, n in counts.items()},
        }

    def fingerprint(self) -> str:
        """A sha256 of the table's content and column order (not of the file's bytes)."""
        digest = hashlib.sha256()
        digest.update("\x1f".join(self.frame.columns).encode())
        for row in self.frame.itertuples(index=False):
            digest.update(("\x1e" + "\x1f".join(row)).encode())
        return digest.hexdigest()


def make_table(frame: pd.DataFrame, target: str | None, *, source: str) -> Table:
    """Validate a DataFrame as a categorical table (``target`` defaults to the last column)."""
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
    target = frame.columns[-1] if target is None else target
    if target not in frame.columns:
        raise DataError(
            f"{source}: no target column {target!r}; columns are {', '.join(frame.columns)}"
        )
    frame = frame.astype(str).map(str.strip)
    _check_target(frame[target], target, source)
    for name in frame.columns:
        if name != target:
            frame[name] = missing_to_category(frame[name])
    return Table(frame=frame.reset_index(drop=True), target=str(target), source=source)


def missing_to_category(values: pd.Series) -> pd.Series:
    """Feature values as stripped strings, missing ones (NaN, empty, ``?``...) as ``MISSING``."""
    text = values.astype(str).str.strip()
    return text.mask(values.isna() | text.isin(_MISSING_TOKENS), MISSING)


def _check_target(target: pd.Series, name: str, source: str) -> None:
    missing = target.isin(_MISSING_TOKENS)
    if missing.any():
        line = int(np.flatnonzero(missing.to_numpy())[0]) + 2
        raise DataError(
            f"{source}: target column {name!r} has {int(missing.sum())} missing value(s), "
            f"first on line {line}; every row needs a class"
        )
    if target.nunique() < 2:
        raise DataError(
            f"{source}: target column {name!r} has a single class {target.iloc[0]!r}; "
            "a classifier needs at least two"
        )
