"""Splitting rows into train, validation and test."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from carsearch.data.table import Table
from carsearch.exceptions import DataError

#: Rows a class needs to appear in train, validation and test.
MIN_CLASS_ROWS = 3


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

    ``stratified`` keeps each class's share in every part (shuffled by ``seed``); a class
    with fewer than 3 rows cannot be in all three, so its rows all go to training.
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
        if len(rows) < MIN_CLASS_ROWS:
            parts[0].append(rows)
            continue
        n_test = max(1, round(len(rows) * test_fraction))
        n_val = max(1, round(len(rows) * val_fraction))
        cuts = [len(rows) - n_test - n_val, len(rows) - n_test]
        for part, chunk in zip(parts, np.split(rows, cuts), strict=True):
            part.append(chunk)
    none = np.empty(0, dtype=np.intp)  # a part no class reached
    train, val, test = (np.sort(np.concatenate([none, *p])) for p in parts)
    return Split(train, val, test)


def check_parts(split: Split, source: str) -> None:
    """Every part needs rows: training learns, validation picks, test scores.

    Raises:
        DataError: a part is empty (a table of a few rows), naming the file and the part.
    """
    sizes = {"train": len(split.train), "validation": len(split.val), "test": len(split.test)}
    empty = [name for name, size in sizes.items() if size == 0]
    if empty:
        n_rows = sum(sizes.values())
        raise DataError(
            f"{source}: {n_rows} rows are too few to split into train, validation and test "
            f"(the {empty[0]} part would be empty); a search needs a larger table"
        )


def rare_classes(table: Table) -> list[str]:
    """Classes with fewer than 3 rows: kept for training, absent from validation and test.

    Raises:
        DataError: fewer than two classes have 3 rows or more: nothing left to validate on.
    """
    counts = table.frame[table.target].value_counts()
    rare = sorted(str(label) for label in counts.index[counts < MIN_CLASS_ROWS])
    if len(counts) - len(rare) < 2:
        raise DataError(
            f"{table.source}: target column {table.target!r} needs at least two classes with "
            f"{MIN_CLASS_ROWS} rows or more (one each for train, validation and test); "
            f"classes with fewer: {', '.join(rare)}"
        )
    return rare
