"""Feature values to integer category codes, and class names to class codes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from carsearch.data.schema import Schema
from carsearch.exceptions import DataError


def encode(frame: pd.DataFrame, schema: Schema, *, column_source: str = "input") -> np.ndarray:
    """Integer codes of ``frame``'s feature columns, shape (rows, columns), in schema order.

    Raises:
        DataError: a schema column is missing, or a value is not in its vocabulary.
    """
    codes = np.empty((len(frame), len(schema.columns)), dtype=np.int64)
    for j, column in enumerate(schema.columns):
        if column.name not in frame.columns:
            raise DataError(f"{column_source}: missing column {column.name!r}")
        values = frame[column.name].astype(str)
        index = pd.Index(column.categories)
        position = index.get_indexer(values)
        if (position < 0).any():
            unseen = values[position < 0].iloc[0]
            raise DataError(
                f"{column_source}: column {column.name!r} has value {unseen!r}, not seen in "
                f"training; known values are {', '.join(column.categories)}"
            )
        codes[:, j] = position
    return codes


def encode_target(series: pd.Series, schema: Schema) -> np.ndarray:
    """Class codes of a target column, in ``schema.classes`` order."""
    codes: np.ndarray = pd.Index(schema.classes).get_indexer(series.astype(str))
    return codes.astype(np.int64)
