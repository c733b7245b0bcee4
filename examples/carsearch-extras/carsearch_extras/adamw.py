"""AdamW, Adam with decoupled weight decay: carsearch optimizer family ``adamw``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from optuna.trial import BaseTrial

from carsearch.plugins import OptimizerPlugin


class AdamW(OptimizerPlugin):
    """AdamW with a searched learning rate and (decoupled) weight decay.

    Example:
        >>> import optuna
        >>> params = AdamW().search_space(
        ...     optuna.trial.FixedTrial({"adamw_lr": 1e-3, "adamw_weight_decay": 1e-2})
        ... )
        >>> AdamW().build(torch.nn.Linear(2, 2).parameters(), params).__class__.__name__
        'AdamW'
    """

    def search_space(self, trial: BaseTrial) -> dict[str, Any]:
        # Prefixed names: every optimizer family of a study has its own learning-rate range.
        return {
            "adamw_lr": trial.suggest_float("adamw_lr", 1e-4, 3e-2, log=True),
            "adamw_weight_decay": trial.suggest_float("adamw_weight_decay", 1e-4, 0.3, log=True),
        }

    def build(
        self, parameters: Iterable[torch.nn.Parameter], params: dict[str, Any]
    ) -> torch.optim.Optimizer:
        return torch.optim.AdamW(
            parameters, lr=params["adamw_lr"], weight_decay=params["adamw_weight_decay"]
        )
