"""A residual MLP: carsearch model ``resmlp``."""

from __future__ import annotations

from typing import Any

import torch
from optuna.trial import BaseTrial
from torch import nn

from carsearch.plugins import ModelPlugin, SearchContext


class ResidualBlock(nn.Module):
    """``x + Dropout(Linear(ReLU(Linear(LayerNorm(x)))))``, a pre-norm residual block."""

    def __init__(self, width: int, dropout: float) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.LayerNorm(width),
            nn.Linear(width, width),
            nn.ReLU(),
            nn.Linear(width, width),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResMLP(nn.Module):
    """carsearch's features projected to ``width``, then residual blocks, then a head.

    Example:
        >>> model = ResMLP(6, n_outputs=2, width=16, n_blocks=2, dropout=0.1)
        >>> model(torch.randn(3, 6)).shape
        torch.Size([3, 2])
    """

    def __init__(
        self, n_features: int, *, n_outputs: int, width: int, n_blocks: int, dropout: float
    ) -> None:
        super().__init__()
        self.project = nn.Linear(n_features, width)
        self.blocks = nn.Sequential(*(ResidualBlock(width, dropout) for _ in range(n_blocks)))
        self.head = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, n_outputs))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.project(features)))


class ResMLPPlugin(ModelPlugin):
    """The searched residual MLP; its parameters carry the ``resmlp_`` prefix.

    Example:
        >>> import optuna
        >>> trial = optuna.trial.FixedTrial(
        ...     {"resmlp_n_blocks": 2, "resmlp_width": 32, "resmlp_dropout": 0.1}
        ... )
        >>> plugin = ResMLPPlugin()
        >>> context = SearchContext(1000, n_categorical=0, n_numeric=5, task="classification")
        >>> model = plugin.build(5, 2, plugin.search_space(trial, context))
        >>> model(torch.randn(4, 5)).shape
        torch.Size([4, 2])
    """

    def search_space(self, trial: BaseTrial, context: SearchContext) -> dict[str, Any]:
        return {
            "resmlp_n_blocks": trial.suggest_int("resmlp_n_blocks", 1, 4),
            "resmlp_width": trial.suggest_int("resmlp_width", 16, 256, log=True),
            "resmlp_dropout": trial.suggest_float("resmlp_dropout", 0.0, 0.3),
        }

    def build(self, n_features: int, n_outputs: int, params: dict[str, Any]) -> nn.Module:
        return ResMLP(
            n_features,
            n_outputs=n_outputs,
            width=int(params["resmlp_width"]),
            n_blocks=int(params["resmlp_n_blocks"]),
            dropout=float(params["resmlp_dropout"]),
        )
