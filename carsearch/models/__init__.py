"""Models: model and embedding-rule plugins, and the modules they build."""

from __future__ import annotations

from typing import TYPE_CHECKING

from carsearch._lazy import exports

if TYPE_CHECKING:
    from carsearch.models.base import ModelPlugin
    from carsearch.models.rules import EmbeddingRule

__getattr__, __dir__ = exports(
    __name__,
    {
        "ModelPlugin": "carsearch.models.base",
        "EmbeddingRule": "carsearch.models.rules",
    },
)
__all__ = ["EmbeddingRule", "ModelPlugin"]
