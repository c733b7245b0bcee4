"""The bases of model plugins (entry-point group ``carsearch.models``).

A family is one of two kinds. A :class:`ModelPlugin` builds a torch network that carsearch
trains itself, epoch by epoch, on the row's embedded and encoded features. An
:class:`EstimatorPlugin` is trained by its own library (gradient-boosted trees) on the row's
raw codes and numbers, and hands back its model as text in that library's own format,
which it can turn into a torch module of the same predictions: so both kinds are searched
in one study, ensembled together, and exported as one module.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
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


class ModelFamily(ABC):
    """What every model family has: a search space, and how many refits its final model
    averages. A plugin derives from :class:`ModelPlugin` or :class:`EstimatorPlugin`."""

    #: How many refits of the best configuration the final model averages by default.
    refit_members: ClassVar[int] = 5

    @abstractmethod
    def search_space(self, trial: BaseTrial, context: SearchContext) -> dict[str, Any]:
        """Suggest the model's parameters on ``trial`` and return them.

        ``context`` holds facts of the data (training rows, feature columns, task) that a
        range may depend on; it is the same for every trial of a study.
        """

    def first_params(self, context: SearchContext) -> dict[str, Any] | None:
        """A configuration of this space that a new study tries first (its library's
        defaults, say), so that the search never ends worse on validation; or ``None``."""
        return None


class ModelPlugin(ModelFamily):
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

    @abstractmethod
    def build(self, n_features: int, n_outputs: int, params: dict[str, Any]) -> nn.Module:
        """A fresh, randomly initialised network for ``params``."""


@dataclass(frozen=True)
class Rows:
    """Rows as an estimator trains on them: category codes (``int64``, ``>= 0``), numbers
    (``float32``, NaN where missing), and targets: class indices, or for a regression the
    target standardized by its training mean and standard deviation (what every family's
    raw output predicts). ``weights`` weigh rows in the loss (``class_weight``), or are
    ``None``."""

    codes: np.ndarray
    numbers: np.ndarray
    targets: np.ndarray
    weights: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.targets)


#: Called after each epoch with its number (from 1) and the model's raw outputs on the
#: validation rows ``(rows, n_outputs)``; it may raise ``optuna.TrialPruned``, and returns
#: whether to stop (carsearch's early stopping).
EpochWatch = Callable[[int, np.ndarray], bool]


class EstimatorPlugin(ModelFamily):
    """Base of model families that their own library trains (gradient-boosted trees).

    The unit of work is an *epoch*, as for networks: for boosting, a fixed number of rounds
    (:attr:`rounds_per_epoch`), so that pruning rungs, early stopping patience and
    ``--max-epochs`` mean the same for every family. Outputs are raw, as a network's:
    class logits ``(rows, classes)`` (softmax gives the probabilities) or one standardized
    value ``(rows, 1)``.

    Example:
        >>> from carsearch import plugins
        >>> isinstance(plugins.instance("models", "mlp"), EstimatorPlugin)
        False
    """

    refit_members: ClassVar[int] = 1
    #: Boosting rounds in one epoch.
    rounds_per_epoch: ClassVar[int] = 10

    @abstractmethod
    def fit(
        self,
        train: Rows,
        val: Rows | None,
        params: dict[str, Any],
        *,
        n_outputs: int,
        n_epochs: int,
        seed: int,
        on_epoch: EpochWatch | None = None,
    ) -> str:
        """Train on ``train`` for up to ``n_epochs`` with one thread, calling ``on_epoch``
        after each epoch when ``val`` is given; return the model as text in the library's
        own format (no pickle), all epochs trained kept."""

    @abstractmethod
    def load(self, text: str, *, n_categorical: int, n_outputs: int) -> nn.Module:
        """The model ``text`` (from :meth:`fit` or :meth:`cut`) as a module mapping
        ``(codes, numbers)`` to raw outputs, which traces to TorchScript and exports to ONNX.

        Raises:
            ValueError: ``text`` is not a model of this family.
        """

    @abstractmethod
    def cut(self, text: str, n_epochs: int) -> str:
        """The model ``text`` with only its first ``n_epochs``: what a bundle keeps."""
