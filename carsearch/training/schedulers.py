"""Learning-rate schedulers, by the names the search space offers."""

from __future__ import annotations

import torch

#: The schedulers the search chooses from.
LR_SCHEDULERS: tuple[str, ...] = ("none", "exponential", "cosine")


def make_scheduler(
    name: str, optimizer: torch.optim.Optimizer, max_epochs: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """``none``, ``exponential`` (the textbook's ``0.95 ** epoch``) or ``cosine``."""
    if name == "exponential":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 0.95**epoch)
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max_epochs)
    return None
