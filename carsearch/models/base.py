"""The base of model plugins (entry-point group ``carsearch.models``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from optuna.trial import BaseTrial
from torch import nn

from carsearch.data.schema import Schema


class ModelPlugin(ABC):
    """Base of model plugins (entry-point group ``carsearch.models``).

    A model takes a ``(batch, columns)`` tensor of int64 category codes and returns
    ``(batch, classes)`` logits. Its own parameter names must not clash with the shared ones
    (``embedding_rule``, ``optimizer``, ``batch_size``, ``lr_scheduler``) nor with other
    plugins'.

    Example:
        >>> import optuna
        >>> from carsearch.data import Column, Schema
        >>> import torch
        >>> from carsearch.models.mlp import EmbeddingMLPPlugin
        >>> schema = Schema((Column("a", ("x", "y")),), "t", ("no", "yes"))
        >>> trial = optuna.trial.FixedTrial({"n_layers": 1, "n_units_l0": 8, "dropout": 0.1,
        ...                                  "embedding_dropout": 0.0, "batch_norm": True})
        >>> plugin = EmbeddingMLPPlugin()
        >>> model = plugin.build(schema, plugin.search_space(trial), embedding_dims=[2])
        >>> model(torch.tensor([[0], [1]])).shape
        torch.Size([2, 2])
    """

    @abstractmethod
    def search_space(self, trial: BaseTrial) -> dict[str, Any]:
        """Suggest the model's parameters on ``trial`` and return them."""

    @abstractmethod
    def build(
        self, schema: Schema, params: dict[str, Any], *, embedding_dims: Sequence[int]
    ) -> nn.Module:
        """A fresh, randomly initialised model for ``schema`` with ``params``."""
