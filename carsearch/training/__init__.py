"""Training: the loop, optimizer plugins, schedulers, metrics, devices and seeds, refits."""

from __future__ import annotations

from typing import TYPE_CHECKING

from carsearch._lazy import exports

if TYPE_CHECKING:
    from carsearch.training.optimizers import OptimizerPlugin
    from carsearch.training.recipe import Recipe

__getattr__, __dir__ = exports(
    __name__,
    {
        "OptimizerPlugin": "carsearch.training.optimizers",
        "Recipe": "carsearch.training.recipe",
    },
)
__all__ = ["OptimizerPlugin", "Recipe"]
