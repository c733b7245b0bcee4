"""Optimizer families, each with its own sub-parameters and learning-rate range.

Parameter names carry the family's prefix (``adam_lr``, ``sgd_momentum``) so that every
trial parameter has one distribution across the whole study.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any

import torch
from optuna.trial import BaseTrial

from carsearch.data.schema import REGRESSION
from carsearch.models.base import SearchContext

#: SGD's largest learning rate on a regression. MSE's gradient grows with the error (cross
#: entropy's is bounded), and with batch norm every SGD trial at lr >= 0.1 diverged within 4
#: epochs on Ames, whatever the momentum (0, 0.9, 0.99) or numeric encoding; at 0.05 none
#: did. Other tables' 17 diverged trials (issue 19) all had lr 0.16-0.5.
SGD_MAX_LR_REGRESSION = 0.05


class OptimizerPlugin(ABC):
    """Base of optimizer plugins (entry-point group ``carsearch.optimizers``).

    Example:
        >>> import optuna, torch
        >>> from carsearch.training.optimizers import Adam
        >>> params = Adam().search_space(optuna.trial.FixedTrial({"adam_lr": 1e-3,
        ...                                                     "adam_weight_decay": 1e-6}))
        >>> Adam().build(torch.nn.Linear(2, 2).parameters(), params).__class__.__name__
        'Adam'
    """

    @abstractmethod
    def search_space(self, trial: BaseTrial) -> dict[str, Any]:
        """Suggest this family's parameters on ``trial`` (names prefixed) and return them."""

    def search_space_for(self, trial: BaseTrial, context: SearchContext) -> dict[str, Any]:
        """The parameters for a study of ``context`` (its task and rows): what the search
        calls. By default :meth:`search_space`; override where a range depends on the data."""
        return self.search_space(trial)

    @abstractmethod
    def build(
        self, parameters: Iterable[torch.nn.Parameter], params: dict[str, Any]
    ) -> torch.optim.Optimizer:
        """A ready optimizer over ``parameters`` from the values :meth:`search_space` chose."""


class SGD(OptimizerPlugin):
    """Stochastic gradient descent with momentum and optional Nesterov; its learning rate
    at most :data:`SGD_MAX_LR_REGRESSION` on a regression, where larger ones diverge."""

    def search_space(self, trial: BaseTrial, max_lr: float = 0.5) -> dict[str, Any]:
        return {
            "sgd_lr": trial.suggest_float("sgd_lr", 1e-3, max_lr, log=True),
            "sgd_momentum": trial.suggest_float("sgd_momentum", 0.0, 0.99),
            "sgd_nesterov": trial.suggest_categorical("sgd_nesterov", [False, True]),
        }

    def search_space_for(self, trial: BaseTrial, context: SearchContext) -> dict[str, Any]:
        regression = context.task == REGRESSION
        return self.search_space(trial, SGD_MAX_LR_REGRESSION if regression else 0.5)

    def build(
        self, parameters: Iterable[torch.nn.Parameter], params: dict[str, Any]
    ) -> torch.optim.Optimizer:
        momentum = params["sgd_momentum"]
        return torch.optim.SGD(
            parameters,
            lr=params["sgd_lr"],
            momentum=momentum,
            nesterov=bool(params["sgd_nesterov"]) and momentum > 0,
        )


class Adam(OptimizerPlugin):
    """Adam with L2 weight decay."""

    def search_space(self, trial: BaseTrial) -> dict[str, Any]:
        return {
            "adam_lr": trial.suggest_float("adam_lr", 1e-4, 3e-2, log=True),
            "adam_weight_decay": trial.suggest_float("adam_weight_decay", 1e-7, 1e-2, log=True),
        }

    def build(
        self, parameters: Iterable[torch.nn.Parameter], params: dict[str, Any]
    ) -> torch.optim.Optimizer:
        # The fused kernel updates every tensor in one call: ~1.6x faster steps at this size.
        return torch.optim.Adam(
            parameters, lr=params["adam_lr"], weight_decay=params["adam_weight_decay"], fused=True
        )


class RMSprop(OptimizerPlugin):
    """RMSprop with a searched smoothing constant and momentum."""

    def search_space(self, trial: BaseTrial) -> dict[str, Any]:
        return {
            "rmsprop_lr": trial.suggest_float("rmsprop_lr", 1e-4, 1e-2, log=True),
            "rmsprop_alpha": trial.suggest_float("rmsprop_alpha", 0.8, 0.999),
            "rmsprop_momentum": trial.suggest_float("rmsprop_momentum", 0.0, 0.9),
        }

    def build(
        self, parameters: Iterable[torch.nn.Parameter], params: dict[str, Any]
    ) -> torch.optim.Optimizer:
        return torch.optim.RMSprop(
            parameters,
            lr=params["rmsprop_lr"],
            alpha=params["rmsprop_alpha"],
            momentum=params["rmsprop_momentum"],
            foreach=True,
        )
