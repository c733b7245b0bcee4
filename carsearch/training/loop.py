"""The training loop: ``train_epoch``, ``evaluate`` and ``fit``, each small on its own.

Tensors live on the device for the whole fit and batches are index slices of them: at this
data size a ``DataLoader``'s per-batch Python costs more than the maths.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from carsearch.data.prepare import Encoded, rows_of
from carsearch.exceptions import TrainingError
from carsearch.training.metrics import Scores, is_better
from carsearch.training.tasks import Task

EpochCallback = Callable[[int, float, Scores], None]


@dataclass(frozen=True)
class Tensors:
    """Codes, numbers and targets of some rows, already on the training device."""

    codes: torch.Tensor
    numbers: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    @classmethod
    def select(cls, encoded: Encoded, rows: np.ndarray, device: torch.device) -> Tensors:
        """The rows ``rows`` of ``encoded`` on ``device``: on the CPU, a view of ``encoded``
        when ``rows`` are consecutive (a prepared split's parts are), else a copy."""
        return cls(
            torch.as_tensor(rows_of(encoded.codes, rows), device=device),
            torch.as_tensor(rows_of(encoded.numbers, rows), device=device),
            torch.as_tensor(rows_of(encoded.y, rows), device=device),
        )


@dataclass
class FitResult:
    """What a fit learned: the best epoch (1-based), its scores, and per-epoch history."""

    best_epoch: int
    best_scores: Scores | None
    history: list[tuple[int, float, Scores]] = field(default_factory=list)
    #: Epochs trained: fewer than ``max_epochs`` after early stopping or the deadline.
    n_epochs: int = 0


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: Tensors,
    task: Task,
    batch_size: int,
    generator: torch.Generator,
) -> float:
    """One pass over ``data`` in shuffled batches; returns the mean training loss."""
    model.train()
    order = torch.randperm(len(data), generator=generator).to(data.y.device)
    total = torch.zeros((), device=data.y.device)
    n_seen = 0
    for start in range(0, len(data), batch_size):
        rows = order[start : start + batch_size]
        if len(rows) < 2:  # BatchNorm cannot train on a single row
            continue
        loss = task.loss(model(data.codes[rows], data.numbers[rows]), data.y[rows])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.detach() * len(rows)
        n_seen += len(rows)
    return float(total) / max(n_seen, 1)


#: Rows one forward pass without gradients takes: a million rows at once would hold every
#: layer's activations for all of them (gigabytes: the fused embedding's lookup alone is
#: rows x columns x width floats), chunks hold one chunk's.
PREDICT_ROWS = 8192


@torch.inference_mode()
def predict(model: nn.Module, data: Tensors, task: Task) -> torch.Tensor:
    """The task's predictions of ``model`` for ``data``, in eval mode."""
    model.eval()
    if len(data) <= PREDICT_ROWS:
        return task.predict(model(data.codes, data.numbers))
    starts = range(0, len(data), PREDICT_ROWS)
    parts = [
        model(data.codes[i : i + PREDICT_ROWS], data.numbers[i : i + PREDICT_ROWS]) for i in starts
    ]
    return task.predict(torch.cat(parts))


def evaluate(model: nn.Module, data: Tensors, task: Task) -> Scores:
    """Every score of ``model`` on ``data``."""
    return task.score(predict(model, data, task), data.y)


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    train: Tensors,
    val: Tensors | None,
    *,
    task: Task,
    batch_size: int,
    max_epochs: int,
    seed: int,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    metric: str = "log_loss",
    patience: int | None = None,
    on_epoch: EpochCallback | None = None,
    deadline: float | None = None,
) -> FitResult:
    """Train for up to ``max_epochs``, keeping the weights of the best validation epoch.

    Without ``val`` every epoch is run and the last weights are kept (the refit case).
    ``on_epoch`` sees each epoch's validation scores and may raise to stop (pruning).
    Past ``deadline`` (``time.monotonic()``, a run's time limit) no further epoch starts:
    the fit ends as early stopping ends it, after at least one epoch.

    Raises:
        TrainingError: the training loss stops being finite.
    """
    generator = torch.Generator().manual_seed(seed)
    result = FitResult(best_epoch=max_epochs, best_scores=None)
    best_state: dict[str, torch.Tensor] | None = None
    for epoch in range(1, max_epochs + 1):
        loss = train_epoch(model, optimizer, train, task, batch_size, generator)
        if not math.isfinite(loss):
            raise TrainingError(f"training loss became {loss} at epoch {epoch}")
        result.n_epochs = epoch
        if scheduler is not None:
            scheduler.step()
        if val is None:
            if deadline is not None and time.monotonic() >= deadline:
                break
            continue
        scores = evaluate(model, val, task)
        result.history.append((epoch, loss, scores))
        if on_epoch is not None:
            on_epoch(epoch, loss, scores)
        best = result.best_scores[metric] if result.best_scores else None
        if is_better(metric, scores[metric], best):
            result.best_epoch, result.best_scores = epoch, scores
            best_state = copy.deepcopy(model.state_dict())
        elif patience is not None and epoch - result.best_epoch >= patience:
            break
        if deadline is not None and time.monotonic() >= deadline:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return result
