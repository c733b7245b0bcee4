"""Per-column category embeddings of different widths, stored as one table."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class FusedEmbedding(nn.Module):
    """One embedding per column, stored as a single table: the same math, one lookup.

    Column ``j``'s rows live at ``offsets[j]:offsets[j] + cardinality[j]`` and its width in
    its own block of output features; a fixed mask keeps every other block at zero, so the
    sum over columns equals the concatenation of per-column ``nn.Embedding`` outputs. The
    arithmetic is carsearch 0.1's to the last bit, so a trial of a 0.1 study trains the same
    model today.

    Code 0 of a column with ``<unknown>`` (``unknown[j]``) starts at zero: a value never seen
    in training adds nothing at first. The other rows start from one standard normal
    ``(categories, total width)`` draw, as 0.1 drew it.

    Example:
        >>> FusedEmbedding([3, 5], [2, 4])(torch.tensor([[0, 4], [2, 1]])).shape
        torch.Size([2, 6])
    """

    mask: torch.Tensor
    offsets: torch.Tensor

    def __init__(
        self,
        cardinalities: Sequence[int],
        dims: Sequence[int],
        unknown: Sequence[bool] | None = None,
    ) -> None:
        super().__init__()
        unknown = [False] * len(dims) if unknown is None else list(unknown)
        n_rows, width = sum(cardinalities), sum(dims)
        self.weight = nn.Parameter(initial_table(cardinalities, width, unknown))
        mask = torch.zeros(n_rows, width)
        row = column = 0
        for cardinality, dim in zip(cardinalities, dims, strict=True):
            mask[row : row + cardinality, column : column + dim] = 1.0
            row, column = row + cardinality, column + dim
        self.register_buffer("mask", mask)
        self.register_buffer("offsets", torch.tensor([0, *cardinalities[:-1]]).cumsum(0))
        self.out_features = width

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        table = self.weight * self.mask
        return nn.functional.embedding(codes + self.offsets, table).sum(dim=1)


def initial_table(
    cardinalities: Sequence[int], width: int, unknown: Sequence[bool]
) -> torch.Tensor:
    """Zero rows for ``<unknown>`` codes; the others from one standard normal draw."""
    known = [size - int(has) for size, has in zip(cardinalities, unknown, strict=True)]
    drawn = torch.randn(sum(known), width)
    if not any(unknown):
        return drawn
    table = torch.zeros(sum(cardinalities), width)
    row = old_row = 0
    for size, n_known in zip(cardinalities, known, strict=True):
        first = row + size - n_known  # after the <unknown> code, if the column has one
        table[first : first + n_known] = drawn[old_row : old_row + n_known]
        row, old_row = row + size, old_row + n_known
    return table
