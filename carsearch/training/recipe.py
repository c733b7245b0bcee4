"""A recipe: one point of the search space, ready to build a model and train it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from carsearch import plugins
from carsearch.data.schema import Schema
from carsearch.training.schedulers import make_scheduler


@dataclass(frozen=True)
class Recipe:
    """The chosen plugins and every parameter of one configuration."""

    model: str
    optimizer: str
    embedding_dims: tuple[int, ...]
    batch_size: int
    lr_scheduler: str
    params: dict[str, Any]

    def build_model(self, schema: Schema) -> nn.Module:
        plugin = plugins.instance("models", self.model)
        model: nn.Module = plugin.build(schema, self.params, embedding_dims=self.embedding_dims)
        return model

    def build_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        plugin = plugins.instance("optimizers", self.optimizer)
        optimizer: torch.optim.Optimizer = plugin.build(model.parameters(), self.params)
        return optimizer

    def build_scheduler(
        self, optimizer: torch.optim.Optimizer, max_epochs: int
    ) -> torch.optim.lr_scheduler.LRScheduler | None:
        return make_scheduler(self.lr_scheduler, optimizer, max_epochs)
