"""A table's schema: its categorical and numeric columns, its target and classes.

The schema is fitted on training rows (categories, medians) and is what a model is built
from and what an export bundle stores, so that later inputs are encoded exactly as training
encoded them. Category code 0 of every column is :data:`UNKNOWN`: a value not seen in
training, or seen fewer than ``min_category_count`` times, which the model learns as one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

#: The category of a missing feature value (empty, ``?``, ``NA``...).
MISSING = "<missing>"
#: The category of values rare or absent in training: code 0 of every column.
UNKNOWN = "<unknown>"
CLASSIFICATION, REGRESSION = "classification", "regression"


@dataclass(frozen=True)
class Column:
    """A categorical column and its categories, in code order."""

    name: str
    categories: tuple[str, ...]

    @property
    def cardinality(self) -> int:
        """Codes the column has, ``<unknown>`` included: the rows of its embedding."""
        return len(self.categories)

    @property
    def n_categories(self) -> int:
        """Categories learned from training, ``<unknown>`` not counted: what sizing rules see."""
        return max(1, self.cardinality - (self.categories[:1] == (UNKNOWN,)))


@dataclass(frozen=True)
class NumericColumn:
    """A numeric column: the training median that replaces a missing value, and whether the
    model also gets a 0/1 input saying the value was missing (training had missing values)."""

    name: str
    median: float
    missing_indicator: bool


@dataclass(frozen=True)
class Schema:
    """What a model needs to know about a table: its columns, target and classes.

    ``columns`` are the categorical columns (codes), ``numeric`` the numeric ones (numbers),
    each in file order; ``classes`` is empty for a regression target.
    """

    columns: tuple[Column, ...]
    target: str
    classes: tuple[str, ...]
    numeric: tuple[NumericColumn, ...] = ()
    task: str = CLASSIFICATION

    @property
    def cardinalities(self) -> list[int]:
        return [column.cardinality for column in self.columns]

    @property
    def categorical_names(self) -> list[str]:
        return [column.name for column in self.columns]

    @property
    def numeric_names(self) -> list[str]:
        return [column.name for column in self.numeric]

    @property
    def feature_names(self) -> list[str]:
        """The model's inputs: categorical columns (codes), then numeric ones (numbers)."""
        return self.categorical_names + self.numeric_names

    @property
    def n_outputs(self) -> int:
        return len(self.classes) if self.task == CLASSIFICATION else 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": [{"name": c.name, "categories": list(c.categories)} for c in self.columns],
            "numeric": [
                {"name": c.name, "median": c.median, "missing_indicator": c.missing_indicator}
                for c in self.numeric
            ],
            "target": self.target,
            "classes": list(self.classes),
            "task": self.task,
        }

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> Schema:
        """The schema of :meth:`to_dict`, or of a version-1 bundle (categorical columns only)."""
        columns = tuple(
            Column(str(c["name"]), tuple(str(v) for v in c["categories"]))
            for c in record["columns"]
        )
        numeric = tuple(
            NumericColumn(str(c["name"]), _finite(c["median"]), bool(c["missing_indicator"]))
            for c in record.get("numeric", [])
        )
        return cls(
            columns=columns,
            target=str(record["target"]),
            classes=tuple(str(v) for v in record["classes"]),
            numeric=numeric,
            task=str(record.get("task", CLASSIFICATION)),
        )


def _finite(value: Any) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"a median must be a finite number, got {value!r}")
    return number
