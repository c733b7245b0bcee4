"""The predicting model: several members of one configuration, probabilities averaged."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


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
