"""carsearch: Optuna search over embedding MLPs for categorical tables."""

from __future__ import annotations

from carsearch.api import RunResult, run
from carsearch.config import RunConfig
from carsearch.exceptions import (
    BundleError,
    CarsearchError,
    ConfigError,
    DataError,
    PluginError,
    StudyError,
    TrainingError,
)
from carsearch.predictor import Predictor, load, load_best

__version__ = "0.1.0"

__all__ = [
    "BundleError",
    "CarsearchError",
    "ConfigError",
    "DataError",
    "PluginError",
    "Predictor",
    "RunConfig",
    "RunResult",
    "StudyError",
    "TrainingError",
    "__version__",
    "load",
    "load_best",
    "run",
]
