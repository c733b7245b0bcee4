"""The base of model plugins (entry-point group ``carsearch.models``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from optuna.trial import BaseTrial
from torch import nn


class ModelPlugin(ABC):
    """Base of model plugins: the network between carsearch's inputs and its outputs.

    carsearch turns each row into one float feature vector (category embeddings by the
    searched rule, numeric columns by the searched encoder) and trains what :meth:`build`
    returns on it: a module mapping ``(batch, n_features)`` to ``(batch, n_outputs)`` raw
    outputs (class logits, or one standardized value for regression), or to
    ``(batch, k, n_outputs)`` for a model that is itself an ensemble of ``k`` members, whose
    losses are averaged in training and whose predictions are averaged after.

    Parameter names must not clash with carsearch's shared ones (``embedding_rule``,
    ``embedding_dropout``, ``numeric_encoding``, ``class_weight``, ``optimizer``,
    ``batch_size``, ``lr_scheduler``) nor with other plugins': prefix them.

    Example:
        >>> import optuna, torch
        >>> from carsearch.models.mlp import EmbeddingMLPPlugin
        >>> trial = optuna.trial.FixedTrial({"n_layers": 1, "n_units_l0": 8, "dropout": 0.1,
        ...                                  "batch_norm": True})
        >>> plugin = EmbeddingMLPPlugin()
        >>> model = plugin.build(5, 3, plugin.search_space(trial))
        >>> model(torch.randn(2, 5)).shape
        torch.Size([2, 3])
    """

    #: How many refits of the best configuration the final model averages by default.
    refit_members: ClassVar[int] = 5

    @abstractmethod
    def search_space(self, trial: BaseTrial) -> dict[str, Any]:
        """Suggest the model's parameters on ``trial`` and return them."""

    @abstractmethod
    def build(self, n_features: int, n_outputs: int, params: dict[str, Any]) -> nn.Module:
        """A fresh, randomly initialised network for ``params``."""
