"""Train K configurations of one shape as one batched model (``fit_batched``).

Member ``k`` is built exactly as a lone trial builds its network (``seed_everything(seed)``,
then ``build_network``), shuffles its rows with a generator seeded like a lone ``fit``'s, and
draws its dropout masks from a generator that starts where the global one stood after the
build: so a member's losses equal a lone fit's of the same seed, to float rounding. Members
are grouped by :func:`group_key` (model shape, embedding widths, batch size, optimizer family,
class weights or loss, numeric encoding); the caller trains each group as one batch.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from carsearch.data.prepare import Encoded
from carsearch.exceptions import TrainingError
from carsearch.models.batched import BatchedMLP
from carsearch.models.network import build_network
from carsearch.training.device import seed_everything
from carsearch.training.loop import EpochCallback, FitResult, Tensors
from carsearch.training.metrics import is_better
from carsearch.training.recipe import Recipe
from carsearch.training.stacked import StackedOptimizer
from carsearch.training.tasks import Classification, Regression, Task


@dataclass
class Member:
    """One configuration in a batch: its recipe, seed, and epoch callback (may raise)."""

    recipe: Recipe
    seed: int
    on_epoch: EpochCallback | None = None
    result: FitResult = field(default_factory=lambda: FitResult(best_epoch=0, best_scores=None))
    error: BaseException | None = None


def group_key(recipe: Recipe) -> str:
    """Recipes with equal keys train in one batch: every shape- or step-shared choice."""
    params = recipe.params
    hidden = [params.get(f"n_units_l{i}") for i in range(int(params.get("n_layers", 0)))]
    shared = {
        "model": recipe.model,
        "hidden": hidden,
        "batch_norm": params.get("batch_norm"),
        "embedding_dims": list(recipe.embedding_dims),
        "batch_size": recipe.batch_size,
        "optimizer": recipe.optimizer,
        "class_weight": params.get("class_weight"),
        "loss": params.get("loss"),
        "numeric": {k: v for k, v in params.items() if k.startswith("numeric_")},
    }
    return json.dumps(shared, sort_keys=True, default=str)


def build_batch(
    members: Sequence[Member], encoded: Encoded, rows: np.ndarray, device: torch.device
) -> tuple[BatchedMLP, Task]:
    """The batched model of ``members`` (one group) and their shared task."""
    keys = {group_key(member.recipe) for member in members}
    if len(keys) != 1:
        raise TrainingError(f"members of one batch must share a group key, got {len(keys)}")
    networks, generators = [], []
    task = members[0].recipe.task(encoded, rows, device)
    for member in members:
        seed_everything(member.seed)
        networks.append(build_network(member.recipe.spec(encoded, rows), encoded.schema))
        generator = torch.Generator(device=device)
        generator.set_state(torch.default_generator.get_state())
        generators.append(generator)
    model = BatchedMLP(networks).to(device)
    model.generators = list(generators)
    return model, task


def member_losses(task: Task, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Each member's mean loss ``(K,)`` of ``outputs`` ``(K, rows, out)``, as ``task.loss``."""
    k, rows = targets.shape
    if isinstance(task, Classification):
        flat = outputs.reshape(k * rows, -1)
        losses = torch.nn.functional.cross_entropy(flat, targets.reshape(-1), reduction="none")
        if task.weight is None:
            return losses.view(k, rows).mean(dim=1)
        weights = task.weight[targets]
        return (losses.view(k, rows) * weights).sum(dim=1) / weights.sum(dim=1)
    if isinstance(task, Regression):
        mean, std = task.scale
        standardized = ((targets - mean) / std).unsqueeze(-1)
        if task.loss_name == "huber":
            losses = torch.nn.functional.huber_loss(outputs, standardized, reduction="none")
        else:
            losses = torch.nn.functional.mse_loss(outputs, standardized, reduction="none")
        return losses.mean(dim=(1, 2))
    raise TrainingError(f"no batched loss for {type(task).__name__}")


def train_epoch_batched(
    model: BatchedMLP,
    optimizer: StackedOptimizer,
    data: Tensors,
    task: Task,
    batch_size: int,
    generators: Sequence[torch.Generator],
) -> list[float]:
    """One pass of every member over ``data``, each in its own shuffled batches."""
    model.train()
    orders = torch.stack([torch.randperm(len(data), generator=g) for g in generators])
    orders = orders.to(data.y.device)
    total = torch.zeros(len(generators), device=data.y.device)
    n_seen = 0
    for start in range(0, len(data), batch_size):
        rows = orders[:, start : start + batch_size]
        if rows.shape[1] < 2:  # BatchNorm cannot train on a single row
            continue
        losses = member_losses(task, model(data.codes[rows], data.numbers[rows]), data.y[rows])
        optimizer.zero_grad()
        losses.sum().backward()
        optimizer.step()
        total += losses.detach() * rows.shape[1]
        n_seen += rows.shape[1]
    return (total / max(n_seen, 1)).tolist()


@torch.inference_mode()
def evaluate_batched(model: BatchedMLP, data: Tensors, task: Task) -> list[dict[str, float]]:
    """Every member's scores on ``data`` (the same rows for all)."""
    model.eval()
    k = model.n_members
    codes = data.codes.unsqueeze(0).expand(k, -1, -1)
    numbers = data.numbers.unsqueeze(0).expand(k, -1, -1)
    outputs = model(codes, numbers)
    return [task.score(task.predict(outputs[i]), data.y) for i in range(k)]


def fit_batched(
    members: Sequence[Member],
    encoded: Encoded,
    rows: np.ndarray,
    train: Tensors,
    val: Tensors,
    *,
    device: torch.device,
    max_epochs: int,
    metric: str = "log_loss",
    patience: int | None = None,
) -> list[Member]:
    """Train ``members`` (one group) as one model, as lone ``fit`` calls with validation would.

    Each member's :attr:`Member.result` gets its per-epoch history and best epoch; a member
    whose ``on_epoch`` raises (pruning) keeps the exception in :attr:`Member.error` and leaves
    the batch, as does one whose patience runs out or whose loss stops being finite. The
    best weights are not kept: a search needs the scores, a refit trains anew.
    """
    model, task = build_batch(members, encoded, rows, device)
    recipe = members[0].recipe
    optimizer = StackedOptimizer(
        model,
        recipe.optimizer,
        [m.recipe.params for m in members],
        scheduler=recipe.lr_scheduler,
        max_epochs=max_epochs,
    )
    batch_size = recipe.batch_size
    shuffles = [torch.Generator().manual_seed(member.seed) for member in members]
    running = list(members)
    for epoch in range(1, max_epochs + 1):
        losses = train_epoch_batched(model, optimizer, train, task, batch_size, shuffles)
        optimizer.lrs.step()
        scores = evaluate_batched(model, val, task)
        leaving = [
            i
            for i, member in enumerate(running)
            if not _end_epoch(member, epoch, losses[i], scores[i], metric, patience)
        ]
        if leaving and len(leaving) == len(running):
            break
        if leaving:
            keep = [i for i in range(len(running)) if i not in leaving]
            model.keep(keep)
            optimizer.keep(keep)
            shuffles = [shuffles[i] for i in keep]
            running = [running[i] for i in keep]
    return list(members)


def _end_epoch(
    member: Member,
    epoch: int,
    loss: float,
    scores: dict[str, float],
    metric: str,
    patience: int | None,
) -> bool:
    """Record one member's epoch as ``fit`` would; False when it leaves the batch."""
    result = member.result
    if not math.isfinite(loss):
        member.error = TrainingError(f"training loss became {loss} at epoch {epoch}")
        return False
    result.history.append((epoch, loss, scores))
    if member.on_epoch is not None:
        try:
            member.on_epoch(epoch, loss, scores)
        except Exception as error:  # pruning, a time limit: this member alone stops
            member.error = error
            return False
    best = result.best_scores[metric] if result.best_scores else None
    if is_better(metric, scores[metric], best):
        result.best_epoch, result.best_scores = epoch, scores
        return True
    return patience is None or epoch - result.best_epoch < patience
