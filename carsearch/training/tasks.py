"""What is predicted: the loss a model trains with, its predictions, and their scores."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import torch
from torch import nn

from carsearch.data.schema import REGRESSION, Schema
from carsearch.training.metrics import Scores, classification_scores, regression_scores

#: The ``class_weight`` choices: none, or each class weighted by ``rows / (classes * its rows)``.
CLASS_WEIGHTS: tuple[str, ...] = ("none", "balanced")
#: The regression losses the search chooses from, on the standardized target.
LOSSES: tuple[str, ...] = ("mse", "huber")


class Task(ABC):
    """A prediction problem, as the training loop and the scoring see it."""

    #: The target's mean and standard deviation in training: a regression's outputs are
    #: standardized, and the exported model turns them back into the target's units.
    scale: tuple[float, float] = (0.0, 1.0)

    @abstractmethod
    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The mean loss of raw ``outputs`` (``(rows, out)`` or ``(rows, k, out)``)."""

    @abstractmethod
    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        """Raw outputs as predictions (class probabilities, or values)."""

    @abstractmethod
    def score(self, predictions: torch.Tensor, targets: torch.Tensor) -> Scores:
        """Every metric of ``predictions`` against ``targets``."""


class Classification(Task):
    """Cross-entropy on class logits, optionally class-weighted; softmax predictions."""

    def __init__(self, weight: torch.Tensor | None = None) -> None:
        self.weight = weight

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if outputs.dim() == 3:  # k members: each member's loss, averaged
            k = outputs.shape[1]
            outputs, targets = outputs.flatten(0, 1), targets.repeat_interleave(k)
        return nn.functional.cross_entropy(outputs, targets, weight=self.weight)

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        probabilities = outputs.softmax(dim=-1)
        return probabilities.mean(dim=1) if probabilities.dim() == 3 else probabilities

    def score(self, predictions: torch.Tensor, targets: torch.Tensor) -> Scores:
        return classification_scores(predictions, targets)


class Regression(Task):
    """A standardized number: trained with MSE or Huber on the standardized target, scored
    (RMSE, MAE, R2) in the target's own units."""

    def __init__(self, mean: float, std: float, loss: str = "mse") -> None:
        self.scale = (mean, std)
        self.loss_name = loss

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        mean, std = self.scale
        standardized = ((targets - mean) / std).unsqueeze(-1)
        if outputs.dim() == 3:  # k members: each trained on every row
            standardized = standardized.unsqueeze(1).expand_as(outputs)
        if self.loss_name == "huber":
            return nn.functional.huber_loss(outputs, standardized)
        return nn.functional.mse_loss(outputs, standardized)

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        values = outputs.mean(dim=1) if outputs.dim() == 3 else outputs
        mean, std = self.scale
        return values.squeeze(-1) * std + mean

    def score(self, predictions: torch.Tensor, targets: torch.Tensor) -> Scores:
        return regression_scores(predictions, targets)


def make_task(
    schema: Schema, params: dict[str, Any], labels: np.ndarray, device: torch.device
) -> Task:
    """The task of ``schema`` with the recipe's ``params``, fitted on the training ``labels``
    (the class weights, or the target's mean and standard deviation)."""
    if schema.task == REGRESSION:
        std = float(labels.std())
        return Regression(float(labels.mean()), std if std > 0 else 1.0, params.get("loss", "mse"))
    if params.get("class_weight", "none") == "balanced":
        counts = np.bincount(labels, minlength=len(schema.classes)).astype(np.float64)
        weight = len(labels) / (len(schema.classes) * np.maximum(counts, 1.0))
        return Classification(torch.tensor(weight, dtype=torch.float32, device=device))
    return Classification()
