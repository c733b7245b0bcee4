"""Training an estimator family (:class:`~carsearch.models.base.EstimatorPlugin`) as
carsearch trains a network: epochs scored on the validation rows with the same metrics,
the best epoch kept, early stopping with the same patience, pruning through the same
callback, and a refit that trains the best epoch's length on train + validation.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch

from carsearch import plugins
from carsearch.data.schema import Schema
from carsearch.exceptions import TrainingError
from carsearch.models.base import EstimatorPlugin, Rows
from carsearch.models.network import Estimated, load_estimated
from carsearch.training.loop import EpochCallback, FitResult, Tensors
from carsearch.training.metrics import is_better
from carsearch.training.tasks import Classification, Regression, Task


def estimator(model: str) -> EstimatorPlugin | None:
    """The estimator family ``model``, or ``None`` when it is a network family."""
    plugin = plugins.instance("models", model)
    return plugin if isinstance(plugin, EstimatorPlugin) else None


def rows_for(data: Tensors, task: Task) -> Rows:
    """``data`` as an estimator trains on it: regression targets standardized by the
    task's scale, class weights (``class_weight``) as row weights."""
    y = data.y.cpu().numpy()
    weights = None
    if isinstance(task, Regression):
        mean, std = task.scale
        targets = (y.astype(np.float64) - mean) / std
    else:
        targets = y
        if isinstance(task, Classification) and task.weight is not None:
            weights = task.weight.cpu().numpy()[y]
    return Rows(data.codes.cpu().numpy(), data.numbers.cpu().numpy(), targets, weights)


class SearchFit:
    """A searched fit of estimator ``model``: its epochs' scores (as
    :func:`~carsearch.training.loop.fit` keeps them) and the raw validation outputs of its
    best and of its last epoch, kept when a pruned fit raises out of :meth:`run`."""

    def __init__(self, model: str, params: dict[str, Any], *, max_epochs: int) -> None:
        plugin = estimator(model)
        assert plugin is not None, f"{model!r} is a network family"
        self.plugin, self.params, self.max_epochs = plugin, params, max_epochs
        self.result = FitResult(best_epoch=max_epochs, best_scores=None)
        self.best_raw: np.ndarray | None = None
        self.last_raw: np.ndarray | None = None

    def run(
        self,
        train: Tensors,
        val: Tensors,
        *,
        task: Task,
        n_outputs: int,
        seed: int,
        metric: str,
        patience: int | None,
        on_epoch: EpochCallback | None,
        deadline: float | None = None,
    ) -> FitResult:
        """Train on ``train`` for up to ``max_epochs``, scoring each epoch on ``val``;
        ``on_epoch`` may raise (pruning), and the fit stops early as a network's does.

        Raises:
            TrainingError: the raw outputs stop being finite.
        """
        val_y = val.y.cpu()

        def watch(epoch: int, raw: np.ndarray) -> bool:
            if not np.isfinite(raw).all():
                raise TrainingError(f"outputs became non-finite at epoch {epoch}")
            result, self.last_raw = self.result, raw
            scores = task.score(task.predict(torch.from_numpy(raw)), val_y)
            result.n_epochs = epoch
            result.history.append((epoch, math.nan, scores))
            if on_epoch is not None:
                on_epoch(epoch, math.nan, scores)
            best = result.best_scores[metric] if result.best_scores else None
            if is_better(metric, scores[metric], best):
                result.best_epoch, result.best_scores, self.best_raw = epoch, scores, raw
            elif patience is not None and epoch - result.best_epoch >= patience:
                return True
            return deadline is not None and time.monotonic() >= deadline

        self.plugin.fit(
            rows_for(train, task),
            rows_for(val, task),
            self.params,
            n_outputs=n_outputs,
            n_epochs=self.max_epochs,
            seed=seed,
            on_epoch=watch,
        )
        return self.result


def refit_estimator(
    model: str,
    params: dict[str, Any],
    train: Tensors,
    schema: Schema,
    *,
    task: Task,
    n_epochs: int,
    seed: int,
) -> Estimated:
    """One member of estimator ``model`` trained ``n_epochs`` on ``train`` (no validation)."""
    plugin = estimator(model)
    assert plugin is not None, f"{model!r} is a network family"
    text = plugin.fit(
        rows_for(train, task),
        None,
        params,
        n_outputs=schema.n_outputs,
        n_epochs=n_epochs,
        seed=seed,
    )
    return load_estimated(model, text, schema).to(train.codes.device)
