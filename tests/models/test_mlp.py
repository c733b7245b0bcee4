"""The fused embedding, the embedding MLP and the ensemble."""

from __future__ import annotations

import torch
from torch import nn

from carsearch.models.embedding import FusedEmbedding
from carsearch.models.ensemble import Ensemble
from carsearch.models.mlp import EmbeddingMLP


def test_fused_embedding_equals_per_column_embeddings() -> None:
    cardinalities, dims = [4, 3, 5], [2, 3, 1]
    fused = FusedEmbedding(cardinalities, dims)
    codes = torch.tensor([[0, 2, 4], [3, 0, 1], [1, 1, 0]])
    # The textbook's model: one nn.Embedding per column, concatenated.
    tables, row, col = [], 0, 0
    for cardinality, dim in zip(cardinalities, dims, strict=True):
        table = nn.Embedding(cardinality, dim)
        table.weight.data = fused.weight.data[row : row + cardinality, col : col + dim]
        tables.append(table)
        row, col = row + cardinality, col + dim
    expected = torch.cat([t(codes[:, j]) for j, t in enumerate(tables)], dim=1)
    assert torch.allclose(fused(codes), expected)


def test_fused_embedding_trains_only_its_own_blocks() -> None:
    fused = FusedEmbedding([2, 2], [1, 1])
    fused(torch.tensor([[0, 1], [1, 0]])).sum().backward()
    assert fused.weight.grad is not None
    assert torch.equal(fused.weight.grad * (1 - fused.mask), torch.zeros_like(fused.weight))


def test_embedding_mlp_layers_follow_the_textbook_order() -> None:
    model = EmbeddingMLP(
        [4, 3], [2, 2], [8, 4], 3, dropout=0.4, embedding_dropout=0.4, batch_norm=True
    )
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Linear", "ReLU", "BatchNorm1d", "Dropout"] * 2 + ["Linear"]
    assert model(torch.tensor([[0, 1], [3, 2]])).shape == (2, 3)
    plain = EmbeddingMLP([4], [2], [8], 2, dropout=0.0, embedding_dropout=0.0, batch_norm=False)
    assert "BatchNorm1d" not in [type(layer).__name__ for layer in plain.layers]


def test_ensemble_averages_member_probabilities() -> None:
    members = [nn.Linear(2, 3), nn.Linear(2, 3)]
    x = torch.randn(5, 2)
    expected = (members[0](x).softmax(-1) + members[1](x).softmax(-1)) / 2
    probabilities = Ensemble(members)(x)
    assert torch.allclose(probabilities, expected)
    assert torch.allclose(probabilities.sum(-1), torch.ones(5))
