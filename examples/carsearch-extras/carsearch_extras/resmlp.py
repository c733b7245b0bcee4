"""A residual MLP over per-column embeddings: carsearch model ``resmlp``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from optuna.trial import BaseTrial
from torch import nn

from carsearch.data import Schema
from carsearch.plugins import ModelPlugin


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
    """One embedding per column, concatenated, projected to ``width``, then residual blocks.

    Example:
        >>> model = ResMLP([3, 4], [2, 2], n_classes=2, width=16, n_blocks=2, dropout=0.1)
        >>> model(torch.tensor([[0, 3], [2, 1]])).shape
        torch.Size([2, 2])
    """

    def __init__(
        self,
        cardinalities: Sequence[int],
        embedding_dims: Sequence[int],
        *,
        n_classes: int,
        width: int,
        n_blocks: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.embeddings = nn.ModuleList(
            nn.Embedding(cardinality, dim)
            for cardinality, dim in zip(cardinalities, embedding_dims, strict=True)
        )
        self.project = nn.Linear(sum(embedding_dims), width)
        self.blocks = nn.Sequential(*(ResidualBlock(width, dropout) for _ in range(n_blocks)))
        self.head = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, n_classes))

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        columns = [embed(codes[:, j]) for j, embed in enumerate(self.embeddings)]
        return self.head(self.blocks(self.project(torch.cat(columns, dim=1))))


class ResMLPPlugin(ModelPlugin):
    """The searched residual MLP; its parameters carry the ``resmlp_`` prefix.

    Example:
        >>> import optuna
        >>> from carsearch.data import Column, Schema
        >>> schema = Schema((Column("a", ("x", "y")),), "t", ("no", "yes"))
        >>> trial = optuna.trial.FixedTrial(
        ...     {"resmlp_n_blocks": 2, "resmlp_width": 32, "resmlp_dropout": 0.1}
        ... )
        >>> plugin = ResMLPPlugin()
        >>> model = plugin.build(schema, plugin.search_space(trial), embedding_dims=[2])
        >>> model(torch.tensor([[0], [1]])).shape
        torch.Size([2, 2])
    """

    def search_space(self, trial: BaseTrial) -> dict[str, Any]:
        return {
            "resmlp_n_blocks": trial.suggest_int("resmlp_n_blocks", 1, 4),
            "resmlp_width": trial.suggest_int("resmlp_width", 16, 256, log=True),
            "resmlp_dropout": trial.suggest_float("resmlp_dropout", 0.0, 0.3),
        }

    def build(
        self, schema: Schema, params: dict[str, Any], *, embedding_dims: Sequence[int]
    ) -> nn.Module:
        return ResMLP(
            schema.cardinalities,
            embedding_dims,
            n_classes=len(schema.classes),
            width=int(params["resmlp_width"]),
            n_blocks=int(params["resmlp_n_blocks"]),
            dropout=float(params["resmlp_dropout"]),
        )
