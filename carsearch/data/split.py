"""Splitting rows into train, validation and test."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from carsearch.data.table import Table
from carsearch.exceptions import DataError

_MIN_CLASS_ROWS = 3  # one row each for train, validation and test


@dataclass(frozen=True)
class Split:
    """Row indices of the train, validation and test parts."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def split_rows(
    labels: np.ndarray, *, kind: str, val_fraction: float, test_fraction: float, seed: int
) -> Split:
    """Split row indices into train, validation and test.

    ``stratified`` keeps each class's share in every part (shuffled by ``seed``).
    ``ordered`` reproduces the textbook: the last ``test_fraction`` of rows are the test
    set and the ``val_fraction`` just before them the validation set, in file order.
    """
    if kind == "ordered":
        n = len(labels)
        n_test, n_val = round(n * test_fraction), round(n * val_fraction)
        rows = np.arange(n)
        return Split(
            rows[: n - n_test - n_val], rows[n - n_test - n_val : n - n_test], rows[n - n_test :]
        )
    rng = np.random.default_rng(seed)
    parts: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
    for label in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == label))
        n_test = max(1, round(len(rows) * test_fraction))
        n_val = max(1, round(len(rows) * val_fraction))
        cuts = [len(rows) - n_test - n_val, len(rows) - n_test]
        for part, chunk in zip(parts, np.split(rows, cuts), strict=True):
            part.append(chunk)
    train, val, test = (np.sort(np.concatenate(p)) for p in parts)
    return Split(train, val, test)


def check_splittable(table: Table) -> None:
    """Every class needs a row in each of train, validation and test."""
    counts = table.frame[table.target].value_counts()
    small = counts[counts < _MIN_CLASS_ROWS]
    if not small.empty:
        label, count = small.index[0], int(small.iloc[0])
        raise DataError(
            f"{table.source}: class {label!r} of column {table.target!r} has {count} row(s); "
            f"each class needs at least {_MIN_CLASS_ROWS} to appear in train, validation and test"
        )
