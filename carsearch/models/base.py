"""The base of model plugins (entry-point group ``carsearch.models``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from optuna.trial import BaseTrial
from torch import nn


@dataclass(frozen=True)
class SearchContext:
    """What a model's search space may depend on: facts of the study's data, fixed per study.

    Example:
        >>> SearchContext(n_train=1106, n_categorical=6, n_numeric=0, task="classification")
        SearchContext(n_train=1106, n_categorical=6, n_numeric=0, task='classification')
    """

    n_train: int
    n_categorical: int
    n_numeric: int
    task: str


class ModelPlugin(ABC):
    """Base of model plugins: the network between carsearch's inputs and its outputs.

    carsearch turns each row into one float feature vector (category embeddings by the
    searched rule, numeric columns by the searched encoder) and trains what :meth:`build`
    returns on it: a module mapping ``(batch, n_features)`` to ``(batch, n_outputs)`` raw
    outputs (class logits, or one standardized value for regression), or to
    ``(batch, k, n_outputs)`` for a model that is itself an ensemble of ``k`` members, whose
    losses are averaged in training and whose predictions are averaged after.

    Parameter names must not clash with carsearch's shared ones (``embedding_rule``,
    ``numeric_encoding``, ``class_weight``, ``loss``, ``optimizer``, ``batch_size``,
    ``lr_scheduler``) nor with other plugins': prefix them. A model may suggest
    ``embedding_dropout``, the dropout of the category embeddings it is fed.

    Example:
        >>> import optuna, torch
        >>> from carsearch.models.mlp import EmbeddingMLPPlugin
        >>> trial = optuna.trial.FixedTrial({"n_layers": 1, "n_units_l0": 8, "dropout": 0.1,
        ...                                  "batch_norm": True})
        >>> plugin = EmbeddingMLPPlugin()
        >>> context = SearchContext(1000, n_categorical=0, n_numeric=5, task="classification")
        >>> model = plugin.build(5, 3, plugin.search_space(trial, context))
        >>> model(torch.randn(2, 5)).shape
        torch.Size([2, 3])
    """

    #: How many refits of the best configuration the final model averages by default.
    refit_members: ClassVar[int] = 5

    @abstractmethod
    def search_space(self, trial: BaseTrial, context: SearchContext) -> dict[str, Any]:
        """Suggest the model's parameters on ``trial`` and return them.

        ``context`` holds facts of the data (training rows, feature columns, task) that a
        range may depend on; it is the same for every trial of a study.
        """

    @abstractmethod
    def build(self, n_features: int, n_outputs: int, params: dict[str, Any]) -> nn.Module:
        """A fresh, randomly initialised network for ``params``."""
