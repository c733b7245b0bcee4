"""Model plugins and the embedding MLP, the textbook's model done right."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import torch
from optuna.trial import BaseTrial
from torch import nn

from carsearch.data import Schema


class ModelPlugin(ABC):
    """Base of model plugins (entry-point group ``carsearch.models``).

    A model takes a ``(batch, columns)`` tensor of int64 category codes and returns
    ``(batch, classes)`` logits. Its own parameter names must not clash with the shared ones
    (``embedding_rule``, ``optimizer``, ``batch_size``, ``lr_scheduler``) nor with other
    plugins'.

    Example:
        >>> import optuna
        >>> from carsearch.data import Column, Schema
        >>> from carsearch.model import EmbeddingMLPPlugin
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


class FusedEmbedding(nn.Module):
    """One embedding per column, stored as a single table: the same math, one lookup.

    Column ``j``'s rows live at ``offsets[j]:offsets[j] + cardinality[j]`` and its width in
    its own block of output features; a fixed mask keeps every other block at zero, so the
    sum over columns equals the concatenation of per-column embeddings.
    """

    mask: torch.Tensor
    offsets: torch.Tensor

    def __init__(self, cardinalities: Sequence[int], dims: Sequence[int]) -> None:
        super().__init__()
        n_rows, width = sum(cardinalities), sum(dims)
        self.weight = nn.Parameter(torch.randn(n_rows, width))
        mask = torch.zeros(n_rows, width)
        row = col = 0
        for cardinality, dim in zip(cardinalities, dims, strict=True):
            mask[row : row + cardinality, col : col + dim] = 1.0
            row, col = row + cardinality, col + dim
        offsets = torch.tensor([0, *cardinalities[:-1]]).cumsum(0)
        self.register_buffer("mask", mask)
        self.register_buffer("offsets", offsets)
        self.out_features = width

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        table = self.weight * self.mask
        return nn.functional.embedding(codes + self.offsets, table).sum(dim=1)


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
        return self.layers(self.embedding_dropout(self.embedding(codes)))


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


class Ensemble(nn.Module):
    """Averages the class probabilities of several models of one configuration.

    ``forward`` returns probabilities, not logits: this is the exported, predicting model.
    """

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        probabilities = [member(codes).softmax(dim=-1) for member in self.members]
        return torch.stack(probabilities).mean(dim=0)
