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
import pyarrow as pa
import pyarrow.compute as pc

from carsearch.data.spellings import OddNumbers, odd_spelling
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
class ColumnKind:
    """What one feature column is: numeric (with its numbers), categorical, or dropped.

    Attributes:
        kind: :data:`NUMERIC` or :data:`CATEGORICAL`; ``None`` for a dropped column.
        reason: why it was dropped.
        numbers: a numeric column's values as float64, NaN where missing.
        odd: a categorical column's numbers in a spelling the parser does not take.
    """

    kind: str | None
    reason: str | None = None
    numbers: np.ndarray | None = None
    odd: OddNumbers | None = None


#: The largest magnitude a model's float32 inputs and targets hold.
FLOAT32_MAX = float(np.finfo(np.float32).max)


def parse_numbers(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``values`` (strings) as float64, missing spellings as NaN, and a mask of what fails.

    A value fails when it is neither missing nor a finite number (``inf`` fails too).
    """
    text = values.astype(str).str.strip()
    missing = values.isna().to_numpy() | text.isin(MISSING_TOKENS).to_numpy()
    numbers = _to_float(text.where(~missing))
    failed = ~missing & ~np.isfinite(numbers)
    numbers[missing] = np.nan
    return numbers, failed


def _to_float(text: pd.Series) -> np.ndarray:
    """Strings as float64 (a copy), NaN where missing or not a number.

    Arrow parses a column of numbers at C speed; a column it cannot parse whole goes to
    pandas' parser (which takes every spelling Arrow takes, and a few more) one distinct
    value at a time: a column of words has few.
    """
    try:
        parsed = pc.cast(pa.array(text, from_pandas=True), pa.float64())
        numbers: np.ndarray = np.array(parsed.to_numpy(zero_copy_only=False), dtype=np.float64)
        return numbers
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        codes, distinct = pd.factorize(text)
        distinct_numbers = pd.to_numeric(pd.Series(distinct, dtype=object), errors="coerce")
        known = np.append(distinct_numbers.to_numpy(np.float64), np.nan)  # code -1: missing
        numbers = known[codes]
        return numbers


def column_kind(
    name: str, values: pd.Series, *, source: str, overrides: Overrides, first_line: int = 2
) -> ColumnKind:
    """The kind of feature column ``name`` (stripped strings), parsed once.

    Raises:
        DataError: a numeric column holds text (one forced numeric), or a number beyond
            float32's range (naming the line and the value).
    """
    if name in overrides.categorical:
        return ColumnKind(CATEGORICAL)
    parsed, failed = parse_numbers(values)
    if name in overrides.numeric:
        _check_spelling(name, values, parsed, failed, source)
        what = f"{source}: column {name!r} is to be numeric"
    elif (reason := _drop_reason(values, parsed, failed)) is not None:
        odd = odd_spelling(values, parsed, failed)
        return ColumnKind(None, reason=reason if odd is None else f"{reason}; {odd.note()}")
    elif failed.any() or np.isnan(parsed).all():
        return ColumnKind(CATEGORICAL, odd=odd_spelling(values, parsed, failed))
    else:
        what = f"{source}: column {name!r} is numeric"
    return ColumnKind(NUMERIC, numbers=check_finite(parsed, failed, values, what, first_line))


def warn_dropped(source: str, dropped: dict[str, str]) -> None:
    """One warning line per dropped column, with how to keep it."""
    for name, reason in dropped.items():
        logger.warning(
            "%s: column %r dropped: %s (--categorical %s keeps it)", source, name, reason, name
        )


def _check_spelling(
    name: str, values: pd.Series, parsed: np.ndarray, failed: np.ndarray, source: str
) -> None:
    """A column forced numeric must not be numbers in a spelling the parser does not take.

    Raises:
        DataError: naming the spelling, a value and what to do.
    """
    odd = odd_spelling(values, parsed, failed)
    if odd is not None:
        raise DataError(
            f"{source}: column {name!r} is to be numeric (--numeric), but its values are "
            f"numbers {odd.spelling.name} (e.g. {odd.example!r}), which carsearch does not "
            f"read; {odd.spelling.advice} in the file, or drop --numeric {name} to read it as "
            "categories"
        )


def _drop_reason(values: pd.Series, parsed: np.ndarray, failed: np.ndarray) -> str | None:
    """Why a column (stripped strings) carries no usable signal, or ``None``."""
    missing = np.isnan(parsed) & ~failed
    if not failed.any():  # numbers, or missing: constant when one number and nothing missing
        present = parsed[~missing]
        if len(present) and (missing.any() or present.min() != present.max()):
            return None
        shown = "missing" if not len(present) else repr(values[~missing].iloc[0])
        return f"constant (every value is {shown})"
    present_text = values[~missing]
    n_present = present_text.nunique()
    if n_present + int(missing.any()) <= 1:
        return f"constant (every value is {present_text.iloc[0]!r})"
    if len(present_text) >= ID_MIN_ROWS and n_present >= ID_SHARE * len(present_text):
        return f"an identifier ({n_present} distinct values in {len(present_text)} rows)"
    return None


def finite_numbers(values: pd.Series, what: str, first_line: int) -> np.ndarray:
    """``values`` parsed by :func:`parse_numbers`, checked by :func:`check_finite`."""
    return check_finite(*parse_numbers(values), values, what, first_line)


def check_finite(
    numbers: np.ndarray, failed: np.ndarray, values: pd.Series, what: str, first_line: int
) -> np.ndarray:
    """``numbers`` (parsed from ``values``), if each is missing or a number that the models'
    float32 holds.

    Raises:
        DataError: ``"{what}, but line N holds VALUE, ..."`` for the first value that is
            text, infinite or beyond float32's range, its line counted from ``first_line``.
    """
    unusable = first_unusable(numbers, failed)
    if unusable is not None:
        row, problem = unusable
        value = values.iloc[row]
        raise DataError(f"{what}, but line {row + first_line} holds {value!r}, {problem}")
    return numbers


def first_unusable(numbers: np.ndarray, failed: np.ndarray) -> tuple[int, str] | None:
    """The first value of a parsed column (``numbers``, ``failed`` from :func:`parse_numbers`)
    that is text or infinite, or beyond float32's range, and what is wrong with it; ``None``
    when every value is missing or a number the models' float32 holds."""
    if failed.any():
        return int(np.flatnonzero(failed)[0]), "not a finite number"
    huge = np.abs(np.nan_to_num(numbers)) > FLOAT32_MAX
    if huge.any():
        return int(np.flatnonzero(huge)[0]), (
            f"beyond the ±{FLOAT32_MAX:.1e} that the models compute in (float32); "
            "rescale the column"
        )
    return None


def check_overrides(columns: Sequence[str], target: str, source: str, overrides: Overrides) -> None:
    """Each override names a feature column, and no column is in both.

    Raises:
        DataError: an override names no column or the target, or a column twice.
    """
    numeric, categorical = overrides.numeric, overrides.categorical
    for flag, names in (("--numeric", numeric), ("--categorical", categorical)):
        for name in names:
            if name not in columns:
                raise DataError(
                    f"{source}: {flag} names no column {name!r}; columns are "
                    f"{', '.join(map(str, columns))}"
                )
            if name == target:
                raise DataError(f"{source}: {flag} names the target column {name!r}")
    both = sorted(set(numeric) & set(categorical))
    if both:
        raise DataError(f"{source}: column {both[0]!r} is in both --numeric and --categorical")
