"""The export bundle: its format, writing and reading it, portable files, the predictor."""

from __future__ import annotations

from typing import TYPE_CHECKING

from carsearch._lazy import exports

if TYPE_CHECKING:
    from carsearch.bundle.files import Bundle, read_bundle, write_bundle
    from carsearch.bundle.predictor import Predictor, load, load_best

__getattr__, __dir__ = exports(
    __name__,
    {
        "Bundle": "carsearch.bundle.files",
        "read_bundle": "carsearch.bundle.files",
        "write_bundle": "carsearch.bundle.files",
        "Predictor": "carsearch.bundle.predictor",
        "load": "carsearch.bundle.predictor",
        "load_best": "carsearch.bundle.predictor",
    },
)
__all__ = ["Bundle", "Predictor", "load", "load_best", "read_bundle", "write_bundle"]
