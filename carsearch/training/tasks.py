"""What is predicted: the loss a model trains with, its predictions, and their scores."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import torch
from torch import nn

from carsearch.data.schema import Schema
from carsearch.training.metrics import Scores, classification_scores

#: The ``class_weight`` choices: none, or each class weighted by ``rows / (classes * its rows)``.
CLASS_WEIGHTS: tuple[str, ...] = ("none", "balanced")


class Task(ABC):
    """A prediction problem, as the training loop and the scoring see it."""

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


def make_task(
    schema: Schema, params: dict[str, Any], labels: np.ndarray, device: torch.device
) -> Task:
    """The task of ``schema`` with the recipe's ``params``, weighted by the training ``labels``."""
    if params.get("class_weight", "none") == "balanced":
        counts = np.bincount(labels, minlength=len(schema.classes)).astype(np.float64)
        weight = len(labels) / (len(schema.classes) * np.maximum(counts, 1.0))
        return Classification(torch.tensor(weight, dtype=torch.float32, device=device))
    return Classification()
