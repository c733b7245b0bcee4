"""The input block every model shares: one feature vector from a row's codes and numbers.

Categorical codes go through the embeddings sized by the searched rule; numeric values have
a missing value replaced by the training median (plus a 0/1 input saying it was missing,
for columns that had missing values in training) and go through the searched encoder.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from carsearch.models.embedding import FusedEmbedding


class NumericInput(nn.Module):
    """Median imputation, missing-value indicators, then the numeric encoder."""

    median: torch.Tensor
    indicators: torch.Tensor

    def __init__(self, medians: Sequence[float], indicators: Sequence[int], encoder: nn.Module):
        super().__init__()
        self.register_buffer("median", torch.tensor(list(medians), dtype=torch.float32))
        self.register_buffer("indicators", torch.tensor(list(indicators), dtype=torch.long))
        self.encoder = encoder
        self.n_indicators = len(indicators)

    def forward(self, numbers: torch.Tensor) -> torch.Tensor:
        missing = torch.isnan(numbers)
        encoded: torch.Tensor = self.encoder(torch.where(missing, self.median, numbers))
        if self.n_indicators == 0:
            return encoded
        return torch.cat([encoded, missing[:, self.indicators].to(encoded.dtype)], dim=1)


class Inputs(nn.Module):
    """``(codes, numbers)`` to ``(batch, out_features)``: embeddings next to encoded numbers."""

    def __init__(
        self,
        embedding: FusedEmbedding | None,
        numeric: NumericInput | None,
        *,
        embedding_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.embedding = embedding
        self.embedding_dropout = nn.Dropout(embedding_dropout)
        self.numeric = numeric
        self.out_features = self._width()

    def forward(self, codes: torch.Tensor, numbers: torch.Tensor) -> torch.Tensor:
        # An input without columns still joins the graph as a zero-width slice, so exported
        # TorchScript and ONNX files take both inputs whatever the table's columns.
        if self.embedding is None:
            embedded = codes[:, :0].to(numbers.dtype)
        else:
            embedded = self.embedding_dropout(self.embedding(codes))
        encoded = numbers[:, :0] if self.numeric is None else self.numeric(numbers)
        return torch.cat([embedded, encoded], dim=1)

    def _width(self) -> int:
        width = 0 if self.embedding is None else self.embedding.out_features
        if self.numeric is not None:
            n_columns = int(self.numeric.median.shape[0])
            with torch.no_grad():
                width += int(self.numeric.eval()(torch.zeros(2, n_columns)).shape[1])
            self.numeric.train()
        return width
