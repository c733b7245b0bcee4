"""Per-column category embeddings stored as one table."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


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
