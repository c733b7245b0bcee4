"""Tables: reading files, schemas, encoding, splits, and data-set plugins."""

from __future__ import annotations

from typing import TYPE_CHECKING

from carsearch._lazy import exports

if TYPE_CHECKING:
    from carsearch.data.datasets import DatasetPlugin
    from carsearch.data.read import read_frame, read_table
    from carsearch.data.schema import MISSING, Column, Schema
    from carsearch.data.table import Table, make_table, missing_to_category

__getattr__, __dir__ = exports(
    __name__,
    {
        "MISSING": "carsearch.data.schema",
        "Column": "carsearch.data.schema",
        "Schema": "carsearch.data.schema",
        "Table": "carsearch.data.table",
        "make_table": "carsearch.data.table",
        "missing_to_category": "carsearch.data.table",
        "read_frame": "carsearch.data.read",
        "read_table": "carsearch.data.read",
        "DatasetPlugin": "carsearch.data.datasets",
    },
)
__all__ = [
    "Column",
    "DatasetPlugin",
    "MISSING",
    "Schema",
    "Table",
    "make_table",
    "missing_to_category",
    "read_frame",
    "read_table",
]
