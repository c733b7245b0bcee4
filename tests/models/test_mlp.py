"""The fused embedding, the MLP, the input block and the ensemble."""

from __future__ import annotations

import torch
from torch import nn

from carsearch.data.schema import CLASSIFICATION, REGRESSION
from carsearch.models.embedding import FusedEmbedding
from carsearch.models.inputs import Inputs, NumericInput
from carsearch.models.mlp import MLP
from carsearch.models.network import Ensemble, Network


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


def test_fused_embedding_trains_only_its_own_blocks_and_starts_unknown_at_zero() -> None:
    fused = FusedEmbedding([2, 3], [1, 2], unknown=[True, True])
    assert torch.equal(fused.weight[[0, 2]], torch.zeros(2, 3))  # code 0: <unknown>
    fused(torch.tensor([[0, 1], [1, 2]])).sum().backward()
    assert fused.weight.grad is not None
    assert torch.equal(fused.weight.grad * (1 - fused.mask), torch.zeros_like(fused.weight))


def test_fused_embedding_starts_from_carsearch_01s_draw() -> None:
    torch.manual_seed(7)
    old = torch.randn(2 + 4, 1 + 2)  # 0.1: one draw over the known categories
    torch.manual_seed(7)
    fused = FusedEmbedding([3, 5], [1, 2], unknown=[True, True])
    assert torch.equal(fused.weight[[1, 2, 4, 5, 6, 7]], old)


def test_mlp_layers_follow_the_textbook_order() -> None:
    model = MLP(4, [8, 4], 3, dropout=0.4, batch_norm=True)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Linear", "ReLU", "BatchNorm1d", "Dropout"] * 2 + ["Linear"]
    plain = MLP(4, [8], 2, dropout=0.0, batch_norm=False)
    assert "BatchNorm1d" not in [type(layer).__name__ for layer in plain.layers]


def test_numeric_input_imputes_medians_and_adds_indicators() -> None:
    numeric = NumericInput([1.0, 5.0], [1], nn.Identity())
    numbers = torch.tensor([[2.0, float("nan")], [float("nan"), 3.0]])
    assert torch.equal(numeric(numbers), torch.tensor([[2.0, 5.0, 1.0], [1.0, 3.0, 0.0]]))


def test_inputs_put_embeddings_next_to_encoded_numbers() -> None:
    inputs = Inputs(FusedEmbedding([3], [2]), NumericInput([0.0], [], nn.Identity()))
    assert inputs.out_features == 3
    out = inputs(torch.tensor([[1], [2]]), torch.tensor([[7.0], [8.0]]))
    assert out.shape == (2, 3) and out[:, 2].tolist() == [7.0, 8.0]
    only_numbers = Inputs(None, NumericInput([0.0, 0.0], [0], nn.Identity()))
    assert only_numbers(torch.zeros(2, 0, dtype=torch.long), torch.ones(2, 2)).shape == (2, 3)


def networks() -> list[Network]:
    torch.manual_seed(0)
    return [
        Network(Inputs(None, NumericInput([0.0], [], nn.Identity())), nn.Linear(1, 3))
        for _ in range(2)
    ]


def test_ensemble_averages_member_probabilities() -> None:
    members = networks()
    codes, numbers = torch.zeros(5, 0, dtype=torch.long), torch.randn(5, 1)
    expected = sum(m(codes, numbers).softmax(-1) for m in members) / 2
    probabilities = Ensemble(members, task=CLASSIFICATION)(codes, numbers)
    assert torch.allclose(probabilities, expected)
    assert torch.allclose(probabilities.sum(-1), torch.ones(5))


def test_ensemble_of_regressors_averages_and_restores_the_units() -> None:
    torch.manual_seed(0)
    members = [Network(Inputs(None, NumericInput([0.0], [], nn.Identity())), nn.Linear(1, 1))]
    codes, numbers = torch.zeros(4, 0, dtype=torch.long), torch.randn(4, 1)
    raw = members[0](codes, numbers).squeeze(-1)
    values = Ensemble(members, task=REGRESSION, scale=(100.0, 20.0))(codes, numbers)
    assert torch.allclose(values, raw * 20.0 + 100.0)
