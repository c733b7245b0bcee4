"""The target column: classes or numbers, and what makes one unusable.

``task="auto"`` reads a target as numbers to predict (regression) when every value is a
finite number and either some value is not a whole number or there are more than
:data:`MAX_AUTO_CLASSES` distinct values; anything else is classes. So prices and lengths
are regression, 0/1 and 1-5 ratings are classes, and ``--task`` decides otherwise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from carsearch.data.kinds import MISSING_TOKENS, finite_numbers, parse_numbers
from carsearch.data.schema import CLASSIFICATION, REGRESSION
from carsearch.exceptions import DataError

#: Distinct whole numbers up to which an ``auto`` target is classes.
MAX_AUTO_CLASSES = 20
#: An ``auto`` target this much numbers (and many-valued) is numbers with a typo in it.
_NEARLY_ALL = 0.95


def decide_task(
    values: pd.Series, requested: str, *, name: str, source: str, first_line: int
) -> tuple[str, pd.Series]:
    """The target's task and its values (strings for classes, float64 for numbers).

    Raises:
        DataError: a missing target value; fewer than two classes; for regression a value
            that is text or infinite, or a single distinct value; for ``auto``, a column of
            numbers but for a few text values. Each names the file, column and line.
    """
    where = _Where(name, source, first_line)
    _check_present(values, where)
    task = requested if requested != "auto" else _auto(values, where)
    if task == REGRESSION:
        return task, _numbers(values, where)
    if values.nunique() < 2:
        raise DataError(
            f"{source}: target column {name!r} has a single class {values.iloc[0]!r}; "
            "a classifier needs at least two"
        )
    return CLASSIFICATION, values


class _Where:
    """Where the target is, for messages."""

    def __init__(self, name: str, source: str, first_line: int) -> None:
        self.name, self.source, self.first_line = name, source, first_line

    def line(self, row: int) -> int:
        return row + self.first_line


def _check_present(values: pd.Series, where: _Where) -> None:
    missing = values.isin(MISSING_TOKENS).to_numpy()
    if missing.any():
        line = where.line(int(np.flatnonzero(missing)[0]))
        raise DataError(
            f"{where.source}: target column {where.name!r} has {int(missing.sum())} missing "
            f"value(s), first on line {line}; every row needs a target value"
        )


def _auto(values: pd.Series, where: _Where) -> str:
    numbers, failed = parse_numbers(values)
    many = values.nunique() > MAX_AUTO_CLASSES
    if not failed.any():
        whole = bool(np.all(numbers == np.round(numbers)))
        return REGRESSION if many or not whole else CLASSIFICATION
    if many and failed.mean() <= 1 - _NEARLY_ALL:
        row = int(np.flatnonzero(failed)[0])
        raise DataError(
            f"{where.source}: target column {where.name!r} holds numbers, but line "
            f"{where.line(row)} holds {values.iloc[row]!r}; fix it, or pass --task "
            "classification to predict its values as classes"
        )
    return CLASSIFICATION


def _numbers(values: pd.Series, where: _Where) -> pd.Series:
    what = f"{where.source}: target column {where.name!r} is to be predicted as numbers"
    numbers = finite_numbers(values, what, where.first_line)
    if np.unique(numbers).size < 2:
        raise DataError(
            f"{where.source}: target column {where.name!r} has a single value "
            f"{values.iloc[0]!r}; a regression needs at least two"
        )
    return pd.Series(numbers, name=values.name, index=values.index)
