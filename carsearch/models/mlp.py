"""The MLP of the PyTorch textbook, searched (built-in model ``mlp``).

``n_layers = 0`` is a linear model of the inputs (the category embeddings and encoded
numbers): tables where a linear relation wins, where an MLP never quite finds it, are in the
space (issue 19; ``tests/models/test_linear.py`` compares it with scikit-learn's RidgeCV).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from optuna.trial import BaseTrial
from torch import nn

from carsearch.models.base import ModelPlugin, SearchContext


class MLP(nn.Module):
    """``[Linear, ReLU, BatchNorm1d, Dropout] * n``, then a linear head; no hidden layer is
    a linear model.

    Example:
        >>> MLP(4, [16, 8], 3, dropout=0.1, batch_norm=True)(torch.randn(2, 4)).shape
        torch.Size([2, 3])
    """

    def __init__(
        self,
        n_features: int,
        hidden: Sequence[int],
        n_outputs: int,
        *,
        dropout: float,
        batch_norm: bool,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = n_features
        for units in hidden:
            layers += [nn.Linear(width, units), nn.ReLU()]
            if batch_norm:
                layers.append(nn.BatchNorm1d(units))
            layers.append(nn.Dropout(dropout))
            width = units
        layers.append(nn.Linear(width, n_outputs))
        self.layers = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        outputs: torch.Tensor = self.layers(features)
        return outputs


class EmbeddingMLPPlugin(ModelPlugin):
    """The searched MLP: 0-4 layers of 8-512 units (0, a linear model, on tables with numeric
    columns), dropout and batch norm on or off where there is a hidden layer, and the
    dropout of the category embeddings where the table has categorical columns.

    The parameters are suggested in carsearch 0.1's order, so a 0.1 study's sampler draws
    trials of the same shape today.
    """

    def search_space(self, trial: BaseTrial, context: SearchContext) -> dict[str, Any]:
        # A linear model only where there are numbers to be linear in: on categories alone
        # (Car Evaluation) 12 of 100 trials went to it, all pruned, and the search missed
        # 1.000 test accuracy on seed 0 that it reaches with 1-4 layers.
        n_layers = trial.suggest_int("n_layers", 0 if context.n_numeric else 1, 4)
        params: dict[str, Any] = {"n_layers": n_layers}
        for i in range(n_layers):
            params[f"n_units_l{i}"] = trial.suggest_int(f"n_units_l{i}", 8, 512, log=True)
        if n_layers:  # a linear model has no hidden layer to drop out or normalize
            params["dropout"] = trial.suggest_float("dropout", 0.0, 0.5)
        if context.n_categorical:
            params["embedding_dropout"] = trial.suggest_float("embedding_dropout", 0.0, 0.5)
        if n_layers:
            params["batch_norm"] = trial.suggest_categorical("batch_norm", [True, False])
        return params

    def build(self, n_features: int, n_outputs: int, params: dict[str, Any]) -> nn.Module:
        hidden = [int(params[f"n_units_l{i}"]) for i in range(int(params["n_layers"]))]
        return MLP(
            n_features,
            hidden,
            n_outputs,
            dropout=float(params.get("dropout", 0.0)),
            batch_norm=bool(params.get("batch_norm", False)),
        )
