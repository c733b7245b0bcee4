"""A square-root embedding-size rule with a searched scale: carsearch rule ``sqrt``."""

from __future__ import annotations

import math
from typing import Any

from optuna.trial import BaseTrial

from carsearch.plugins import EmbeddingRule


class Sqrt(EmbeddingRule):
    """``round(sqrt_scale * sqrt(n))``, kept within 1-100, ``sqrt_scale`` searched in 0.5-4.

    Example:
        >>> Sqrt().dim(16, {"sqrt_scale": 1.5})
        6
    """

    def search_space(self, trial: BaseTrial) -> dict[str, Any]:
        return {"sqrt_scale": trial.suggest_float("sqrt_scale", 0.5, 4.0, log=True)}

    def dim(self, cardinality: int, params: dict[str, Any]) -> int:
        width = round(float(params["sqrt_scale"]) * math.sqrt(cardinality))
        return max(1, min(100, width))
