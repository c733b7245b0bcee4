"""The embedding MLP, the textbook's model done right (built-in model ``mlp``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from optuna.trial import BaseTrial
from torch import nn

from carsearch.data.schema import Schema
from carsearch.models.base import ModelPlugin
from carsearch.models.embedding import FusedEmbedding


class EmbeddingMLP(nn.Module):
    """Embeddings, then ``[Linear, ReLU, BatchNorm1d, Dropout] * n``, then a linear head."""

    def __init__(
        self,
        cardinalities: Sequence[int],
        embedding_dims: Sequence[int],
        hidden: Sequence[int],
        n_classes: int,
        *,
        dropout: float,
        embedding_dropout: float,
        batch_norm: bool,
    ) -> None:
        super().__init__()
        self.embedding = FusedEmbedding(cardinalities, embedding_dims)
        self.embedding_dropout = nn.Dropout(embedding_dropout)
        layers: list[nn.Module] = []
        width = self.embedding.out_features
        for units in hidden:
            layers += [nn.Linear(width, units), nn.ReLU()]
            if batch_norm:
                layers.append(nn.BatchNorm1d(units))
            layers.append(nn.Dropout(dropout))
            width = units
        layers.append(nn.Linear(width, n_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.layers(self.embedding_dropout(self.embedding(codes)))
        return logits


class EmbeddingMLPPlugin(ModelPlugin):
    """The searched embedding MLP (built-in model ``mlp``)."""

    def search_space(self, trial: BaseTrial) -> dict[str, Any]:
        n_layers = trial.suggest_int("n_layers", 1, 4)
        params: dict[str, Any] = {"n_layers": n_layers}
        for i in range(n_layers):
            params[f"n_units_l{i}"] = trial.suggest_int(f"n_units_l{i}", 8, 512, log=True)
        params["dropout"] = trial.suggest_float("dropout", 0.0, 0.5)
        params["embedding_dropout"] = trial.suggest_float("embedding_dropout", 0.0, 0.5)
        params["batch_norm"] = trial.suggest_categorical("batch_norm", [True, False])
        return params

    def build(
        self, schema: Schema, params: dict[str, Any], *, embedding_dims: Sequence[int]
    ) -> nn.Module:
        hidden = [int(params[f"n_units_l{i}"]) for i in range(int(params["n_layers"]))]
        return EmbeddingMLP(
            schema.cardinalities,
            embedding_dims,
            hidden,
            len(schema.classes),
            dropout=float(params["dropout"]),
            embedding_dropout=float(params["embedding_dropout"]),
            batch_norm=bool(params["batch_norm"]),
        )
