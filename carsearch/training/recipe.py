"""A recipe: one point of the search space, ready to build networks and train them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from carsearch import plugins
from carsearch.data.prepare import Encoded, rows_of
from carsearch.models.base import EstimatorPlugin
from carsearch.models.network import NetworkSpec, fit_numeric_state
from carsearch.training.schedulers import make_scheduler
from carsearch.training.tasks import Task, make_task


@dataclass(frozen=True)
class Recipe:
    """The chosen plugins and every parameter of one configuration."""

    model: str
    optimizer: str
    embedding_dims: tuple[int, ...]
    batch_size: int
    lr_scheduler: str
    params: dict[str, Any]

    def spec(self, encoded: Encoded, rows: np.ndarray) -> NetworkSpec:
        """The network spec, its numeric encoder fitted on ``rows`` (the training rows); an
        estimator family's has no numeric encoder (it trains on the raw numbers)."""
        if isinstance(plugins.instance("models", self.model), EstimatorPlugin):
            return NetworkSpec(self.model, self.params, self.embedding_dims)
        state = fit_numeric_state(encoded.schema, rows_of(encoded.numbers, rows), self.params)
        return NetworkSpec(self.model, self.params, self.embedding_dims, state)

    def task(self, encoded: Encoded, rows: np.ndarray, device: torch.device) -> Task:
        """The loss and scores, class weights counted on ``rows`` (the training rows)."""
        return make_task(encoded.schema, self.params, encoded.y[rows], device)

    def build_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        plugin = plugins.instance("optimizers", self.optimizer)
        optimizer: torch.optim.Optimizer = plugin.build(model.parameters(), self.params)
        return optimizer

    def build_scheduler(
        self, optimizer: torch.optim.Optimizer, max_epochs: int
    ) -> torch.optim.lr_scheduler.LRScheduler | None:
        return make_scheduler(self.lr_scheduler, optimizer, max_epochs)
