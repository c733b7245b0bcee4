"""A table's schema: its feature columns with their categories, its target and classes.

The schema is what a model is built from and what an export bundle stores, so that later
inputs are encoded exactly as training encoded them.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The category of a missing feature value (empty, ``?``, ``NA``...).
MISSING = "<missing>"


@dataclass(frozen=True)
class Column:
    """A categorical column and its categories, in code order."""

    name: str
    categories: tuple[str, ...]

    @property
    def cardinality(self) -> int:
        return len(self.categories)


@dataclass(frozen=True)
class Schema:
    """What a model needs to know about a table: its columns and classes."""

    columns: tuple[Column, ...]
    target: str
    classes: tuple[str, ...]

    @property
    def cardinalities(self) -> list[int]:
        return [column.cardinality for column in self.columns]

    @property
    def feature_names(self) -> list[str]:
        return [column.name for column in self.columns]

    def to_dict(self) -> dict[str, object]:
        return {
            "columns": [{"name": c.name, "categories": list(c.categories)} for c in self.columns],
            "target": self.target,
            "classes": list(self.classes),
        }

    @classmethod
    def from_dict(cls, record: dict[str, object]) -> Schema:
        columns = tuple(
            Column(str(c["name"]), tuple(str(v) for v in c["categories"]))
            for c in record["columns"]  # type: ignore[attr-defined]
        )
        classes = tuple(str(v) for v in record["classes"])  # type: ignore[attr-defined]
        return cls(columns=columns, target=str(record["target"]), classes=classes)
