"""Embedding-size rules: a column's cardinality in, an embedding width out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from optuna.trial import BaseTrial


class EmbeddingRule(ABC):
    """Base of embedding-rule plugins (entry-point group ``carsearch.embedding_rules``).

    A rule may search parameters of its own in :meth:`search_space`; their names must be
    unique across plugins, so prefix them with the rule's name.

    Example:
        >>> from carsearch.models.rules import Textbook
        >>> Textbook().dim(4, {})
        2
    """

    def search_space(self, trial: BaseTrial) -> dict[str, Any]:
        """Suggest this rule's own parameters on ``trial``; most rules have none."""
        return {}

    @abstractmethod
    def dim(self, cardinality: int, params: dict[str, Any]) -> int:
        """The embedding width (at least 1) for a column of ``cardinality`` categories."""


class Textbook(EmbeddingRule):
    """``min(50, (n + 1) // 2)``, the rule of the PyTorch textbook example."""

    def dim(self, cardinality: int, params: dict[str, Any]) -> int:
        return max(1, min(50, (cardinality + 1) // 2))


class Fastai(EmbeddingRule):
    """``min(600, round(1.6 * n ** 0.56))``, fastai's ``emb_sz_rule``."""

    def dim(self, cardinality: int, params: dict[str, Any]) -> int:
        width: float = 1.6 * cardinality**0.56
        return max(1, min(600, round(width)))


class Fixed(EmbeddingRule):
    """One searched width, ``embedding_dim``, for every column."""

    def search_space(self, trial: BaseTrial) -> dict[str, Any]:
        return {"embedding_dim": trial.suggest_int("embedding_dim", 2, 32, log=True)}

    def dim(self, cardinality: int, params: dict[str, Any]) -> int:
        return int(params["embedding_dim"])
