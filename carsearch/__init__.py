"""carsearch: Optuna search over embedding MLPs for tables, stored in SQLite.

Names are imported on first use (PEP 562), so ``import carsearch`` and ``carsearch --help``
do not pay for torch and Optuna.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from carsearch._lazy import exports
from carsearch.config import RunConfig
from carsearch.exceptions import (
    BundleError,
    CarsearchError,
    ConfigError,
    DataError,
    PluginError,
    StorageError,
    StudyError,
    TrainingError,
)

if TYPE_CHECKING:
    from carsearch.api import RunResult, export_study, run
    from carsearch.bundle.predictor import Predictor, load, load_best
    from carsearch.summary import Summary

__version__ = "0.4.0"

#: Public names imported lazily, by the module that defines them.
_LAZY: dict[str, str] = {
    "RunResult": "carsearch.api",
    "export_study": "carsearch.api",
    "run": "carsearch.api",
    "Predictor": "carsearch.bundle.predictor",
    "load": "carsearch.bundle.predictor",
    "load_best": "carsearch.bundle.predictor",
    "Summary": "carsearch.summary",
}

__all__ = [
    "BundleError",
    "CarsearchError",
    "ConfigError",
    "DataError",
    "PluginError",
    "Predictor",
    "RunConfig",
    "RunResult",
    "StorageError",
    "StudyError",
    "Summary",
    "TrainingError",
    "__version__",
    "export_study",
    "load",
    "load_best",
    "run",
]

__getattr__, __dir__ = exports(__name__, _LAZY)
