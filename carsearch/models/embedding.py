"""Per-column category embeddings of different widths, stored as one table."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class FusedEmbedding(nn.Module):
    """One embedding per column, stored as a single table: the same math, one lookup.

    Column ``j``'s categories are rows ``offsets[j]:offsets[j] + cardinality[j]`` of a table
    as wide as the widest column; a lookup gives ``(batch, columns, widest)``, of which each
    column keeps its first ``dims[j]`` values, so the result equals the concatenation of
    per-column ``nn.Embedding(cardinality[j], dims[j])`` outputs. Code 0 of every column
    (``<unknown>``) starts at zero: a value never seen in training adds nothing at first.

    Example:
        >>> FusedEmbedding([3, 5], [2, 4])(torch.tensor([[0, 4], [2, 1]])).shape
        torch.Size([2, 6])
    """

    offsets: torch.Tensor
    keep: torch.Tensor

    def __init__(self, cardinalities: Sequence[int], dims: Sequence[int]) -> None:
        super().__init__()
        widest = max(dims)
        self.weight = nn.Parameter(torch.randn(sum(cardinalities), widest))
        offsets = torch.tensor([0, *cardinalities[:-1]]).cumsum(0)
        with torch.no_grad():
            self.weight[offsets] = 0.0
        keep = [j * widest + i for j, dim in enumerate(dims) for i in range(dim)]
        self.register_buffer("offsets", offsets)
        self.register_buffer("keep", torch.tensor(keep, dtype=torch.long))
        self.out_features = sum(dims)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        rows = nn.functional.embedding(codes + self.offsets, self.weight)
        return rows.flatten(1)[:, self.keep]
