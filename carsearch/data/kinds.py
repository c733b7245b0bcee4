"""Column kinds: every feature column is numeric or categorical, or dropped with a reason.

The rule: a column whose non-missing values all parse as finite numbers is numeric, anything
else categorical. A column with one value (missing counted as a value) is dropped as
constant; a categorical column with a different value in nearly every row (at least
:data:`ID_SHARE` of its non-missing values distinct, in a table of :data:`ID_MIN_ROWS` rows or
more) is dropped as an identifier. ``numeric=`` and ``categorical=`` override the rule and
keep the column.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from carsearch.exceptions import DataError

logger = logging.getLogger("carsearch")

NUMERIC, CATEGORICAL = "numeric", "categorical"
#: Spellings of a missing value, in any column.
MISSING_TOKENS = frozenset({"", "?", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"})
#: A categorical column whose distinct values are at least this share of its values is an ID.
ID_SHARE = 0.95
#: Tables shorter than this keep their many-valued columns: too few rows to tell an ID.
ID_MIN_ROWS = 20


@dataclass(frozen=True)
class Overrides:
    """Columns the user says are numeric or categorical, whatever the rule says."""

    numeric: Sequence[str] = ()
    categorical: Sequence[str] = ()


@dataclass(frozen=True)
class Kinds:
    """The kind of each kept feature column (in file order), and why the others were dropped."""

    kinds: dict[str, str]
    dropped: dict[str, str]

    def names(self, kind: str) -> list[str]:
        return [name for name, found in self.kinds.items() if found == kind]


#: The largest magnitude a model's float32 inputs and targets hold.
FLOAT32_MAX = float(np.finfo(np.float32).max)


def parse_numbers(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``values`` (strings) as float64, missing spellings as NaN, and a mask of what fails.

    A value fails when it is neither missing nor a finite number (``inf`` fails too).
    """
    text = values.astype(str).str.strip()
    missing = values.isna().to_numpy() | text.isin(MISSING_TOKENS).to_numpy()
    numbers = pd.to_numeric(text.where(~missing), errors="coerce").to_numpy(np.float64, copy=True)
    failed = ~missing & ~np.isfinite(numbers)
    numbers[missing] = np.nan
    return numbers, failed


def infer_kinds(
    frame: pd.DataFrame, target: str, *, source: str, overrides: Overrides, first_line: int = 2
) -> Kinds:
    """The kinds of ``frame``'s feature columns (strings), with ``overrides`` checked.

    Raises:
        DataError: an override names no column, names the target, or names a column twice;
            a column forced numeric holds text (naming the line and the value).
    """
    numeric, categorical = overrides.numeric, overrides.categorical
    _check_overrides(frame, target, source, numeric, categorical)
    kinds: dict[str, str] = {}
    dropped: dict[str, str] = {}
    for name in frame.columns:
        if name == target:
            continue
        values = frame[name]
        if name in numeric:
            _check_numeric(values, name, source, first_line)
            kinds[name] = NUMERIC
        elif name in categorical:
            kinds[name] = CATEGORICAL
        elif (reason := _drop_reason(values)) is not None:
            dropped[name] = reason
        else:
            kinds[name] = NUMERIC if _all_numbers(values) else CATEGORICAL
    for name, reason in dropped.items():
        logger.warning(
            "%s: column %r dropped: %s (--categorical %s keeps it)", source, name, reason, name
        )
    return Kinds(kinds=kinds, dropped=dropped)


def _all_numbers(values: pd.Series) -> bool:
    numbers, failed = parse_numbers(values)
    return not failed.any() and not np.isnan(numbers).all()


def _drop_reason(values: pd.Series) -> str | None:
    """Why a column carries no usable signal, or ``None``."""
    text = values.astype(str).str.strip().mask(values.astype(str).str.strip().isin(MISSING_TOKENS))
    n_distinct = text.nunique(dropna=False)
    if n_distinct <= 1:
        shown = "missing" if text.isna().all() else repr(text.dropna().iloc[0])
        return f"constant (every value is {shown})"
    present = text.dropna()
    if _all_numbers(values) or len(present) < ID_MIN_ROWS:
        return None
    if present.nunique() >= ID_SHARE * len(present):
        return f"an identifier ({present.nunique()} distinct values in {len(present)} rows)"
    return None


def _check_numeric(values: pd.Series, name: str, source: str, first_line: int) -> None:
    finite_numbers(values, f"{source}: column {name!r} is to be numeric", first_line)


def finite_numbers(values: pd.Series, what: str, first_line: int) -> np.ndarray:
    """``values`` parsed by :func:`parse_numbers`: each missing, or a number that the models'
    float32 holds.

    Raises:
        DataError: ``"{what}, but line N holds VALUE, ..."`` for the first value that is
            text, infinite or beyond float32's range, its line counted from ``first_line``.
    """
    numbers, failed = parse_numbers(values)
    if failed.any():
        row = int(np.flatnonzero(failed)[0])
        raise DataError(
            f"{what}, but line {row + first_line} holds {values.iloc[row]!r}, not a finite number"
        )
    huge = np.abs(np.nan_to_num(numbers)) > FLOAT32_MAX
    if huge.any():
        row = int(np.flatnonzero(huge)[0])
        raise DataError(
            f"{what}, but line {row + first_line} holds {values.iloc[row]!r}, beyond the "
            f"±{FLOAT32_MAX:.1e} that the models compute in (float32); rescale the column"
        )
    return numbers


def _check_overrides(
    frame: pd.DataFrame,
    target: str,
    source: str,
    numeric: Sequence[str],
    categorical: Sequence[str],
) -> None:
    for flag, names in (("--numeric", numeric), ("--categorical", categorical)):
        for name in names:
            if name not in frame.columns:
                raise DataError(
                    f"{source}: {flag} names no column {name!r}; columns are "
                    f"{', '.join(map(str, frame.columns))}"
                )
            if name == target:
                raise DataError(f"{source}: {flag} names the target column {name!r}")
    both = sorted(set(numeric) & set(categorical))
    if both:
        raise DataError(f"{source}: column {both[0]!r} is in both --numeric and --categorical")
