"""Fitting a schema on training rows, and encoding any rows with it.

Categorical values become int64 codes (0 is ``<unknown>``), numeric values float32 with NaN
for a missing value: the two inputs every model, TorchScript program and ONNX file takes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from carsearch.data.kinds import first_unusable, parse_numbers
from carsearch.data.schema import (
    CLASSIFICATION,
    REGRESSION,
    UNKNOWN,
    Column,
    NumericColumn,
    Schema,
)
from carsearch.data.table import Table
from carsearch.exceptions import DataError

Unseen = Literal["unknown", "error"]


def fit_schema(table: Table, rows: np.ndarray, *, min_category_count: int) -> Schema:
    """The schema of ``table`` learned from ``rows`` only (the training rows).

    A category needs ``min_category_count`` training rows for a code of its own; rarer ones
    share code 0, ``<unknown>``, with values never seen. Classes come from every row, so a
    class too rare to reach the test split still has its place in the model's output.
    """
    frame = table.frame  # column by column: a copy of the whole training part is not needed
    columns = tuple(
        _fit_column(frame[name].iloc[rows], min_category_count) for name in table.categorical
    )
    numeric = tuple(
        _fit_numeric(name, frame[name].iloc[rows].to_numpy(np.float64)) for name in table.numeric
    )
    classes = table_classes(table) if table.task == CLASSIFICATION else ()
    return Schema(columns, table.target, classes, numeric=numeric, task=table.task)


def table_classes(table: Table) -> tuple[str, ...]:
    """A classification table's classes, sorted: the order of the model's outputs."""
    return tuple(sorted(table.frame[table.target].unique()))


def encode_codes(
    frame: pd.DataFrame, schema: Schema, *, source: str = "input", unseen: Unseen = "unknown"
) -> np.ndarray:
    """int64 codes ``(rows, categorical columns)`` of ``frame``'s categorical columns.

    A value without a code of its own is code 0 when the schema has ``<unknown>``;
    otherwise (a version-1 schema), or with ``unseen="error"``, it is an error.

    Raises:
        DataError: a column is missing, or an unseen value (naming column and value).
    """
    codes = np.empty((len(frame), len(schema.columns)), dtype=np.int64)
    for j, column in enumerate(schema.columns):
        values = _column(frame, column.name, source)
        position = _positions(values, column.categories)
        lenient = unseen == "unknown" and column.categories[:1] == (UNKNOWN,)
        if (position < 0).any() and not lenient:
            raise DataError(
                f"{source}: column {column.name!r} has value "
                f"{values.astype(str)[position < 0].iloc[0]!r}, "
                f"not seen in training; known values are {_known(column.categories)}"
            )
        codes[:, j] = np.where(position < 0, 0, position)
    return codes


def _known(categories: Sequence[str], shown: int = 20) -> str:
    """The values seen in training, as a message lists them: not ``<unknown>``, the code of
    every other value, and the first ``shown`` of many."""
    known = [category for category in categories if category != UNKNOWN]
    more = f", ... ({len(known)} in all)" if len(known) > shown else ""
    return ", ".join(known[:shown]) + more


def _positions(values: pd.Series, categories: Sequence[str]) -> np.ndarray:
    """:func:`category_positions` of ``values`` as strings; a categorical column (a
    :class:`~carsearch.data.table.Table`'s) by its dictionary, without a string per row."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy()
        if not (codes < 0).any():  # a missing value is text ("nan") in the string path
            found = category_positions(pd.Series(values.cat.categories.astype(str)), categories)
            positions: np.ndarray = found[codes]
            return positions
    return category_positions(values.astype(str), categories)


def category_positions(values: pd.Series, categories: Sequence[str]) -> np.ndarray:
    """Each value's position in ``categories``, -1 for a value not among them.

    Arrow's hash lookup, straight on the Arrow strings a file is read into.
    """
    found = pc.index_in(pa.array(values, type=pa.large_string()), value_set=pa.array(categories))
    positions: np.ndarray = pc.fill_null(found, -1).to_numpy().astype(np.int64)
    return positions


def encode_numbers(
    frame: pd.DataFrame, schema: Schema, *, source: str = "input", first_line: int | None = None
) -> np.ndarray:
    """float32 ``(rows, numeric columns)``, NaN where a value is missing.

    Raises:
        DataError: a column is missing, or holds text, an infinite value or one beyond
            float32's range (naming the column, where it is: the file line when
            ``first_line`` says where the file's rows start, else the row's index label, and
            the value).
    """
    numbers = np.empty((len(frame), len(schema.numeric)), dtype=np.float32)
    for j, column in enumerate(schema.numeric):
        values = _column(frame, column.name, source)
        if pd.api.types.is_float_dtype(values):  # parsed already (a Table's numeric column)
            parsed = values.to_numpy()
            failed = np.isinf(parsed)
        else:
            parsed, failed = parse_numbers(values)
        unusable = first_unusable(parsed, failed)
        if unusable is not None:
            row, problem = unusable
            where = f"line {row + first_line}" if first_line else f"row {frame.index[row]!r}"
            raise DataError(
                f"{source}: column {column.name!r} is numeric, but {where} holds "
                f"{values.iloc[row]!r}, {problem}"
            )
        numbers[:, j] = parsed
    return numbers


def encode_target(series: pd.Series, schema: Schema) -> np.ndarray:
    """Class codes of a target column, in ``schema.classes`` order; numbers as float32."""
    if schema.task == REGRESSION:
        values: np.ndarray = series.to_numpy(np.float32)
        return values
    codes: np.ndarray = pd.Index(schema.classes).get_indexer(series.astype(str))
    return codes.astype(np.int64)


def _fit_column(values: pd.Series, min_count: int) -> Column:
    counts = values.value_counts()
    kept = sorted(  # n > 0: a categorical column counts its unseen categories too
        str(value) for value, n in counts.items() if n >= min_count and n > 0 and value != UNKNOWN
    )
    return Column(str(values.name), (UNKNOWN, *kept))


def _fit_numeric(name: str, values: np.ndarray) -> NumericColumn:
    present = values[~np.isnan(values)]
    median = float(np.median(present)) if len(present) else 0.0
    return NumericColumn(name, median, missing_indicator=len(present) < len(values))


def _column(frame: pd.DataFrame, name: str, source: str) -> pd.Series:
    if name not in frame.columns:
        raise DataError(f"{source}: missing column {name!r}")
    return frame[name]
