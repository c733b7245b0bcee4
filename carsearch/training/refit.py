"""Refit the best configuration on train + validation and score it on the test split.

One refit is a gamble on its seed (three seeds of the same best parameters gave 0.942 to
0.991 test accuracy on Car Evaluation), so the final model is an :class:`Ensemble` of
refits whose class probabilities are averaged: the variance of one seed shrinks with their
number, and the ensemble still exports as one module. How many is the model family's
choice (:func:`n_refits`); both built-in families take 5.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from carsearch import plugins
from carsearch.config import RunConfig
from carsearch.data.prepare import Prepared
from carsearch.data.schema import Schema
from carsearch.models.network import Ensemble, Network, NetworkSpec, build_network
from carsearch.training.device import derive_seed, seed_everything
from carsearch.training.estimator import estimator, refit_estimator
from carsearch.training.loop import Tensors, fit
from carsearch.training.metrics import Scores
from carsearch.training.recipe import Recipe
from carsearch.training.tasks import Task

logger = logging.getLogger("carsearch")

#: Keeps refit seeds apart from trial seeds (which use the trial number as key).
_REFIT_KEY = 2**31 - 1

logger = logging.getLogger("carsearch")


@dataclass(frozen=True)
class Refit:
    """The refitted ensemble, what it was built from, and its test scores."""

    model: Ensemble
    recipe: Recipe
    spec: NetworkSpec
    n_epochs: int
    seeds: tuple[int, ...]
    test: Scores
    #: A post-hoc ensemble's configurations (:func:`refit_ensemble`), each a record of its
    #: trial, weight, spec, epochs and seeds; empty for one configuration.
    parts: tuple[dict[str, Any], ...] = field(default=())


@dataclass(frozen=True)
class Part:
    """One configuration of a post-hoc ensemble: its trial, recipe, epochs and weight."""

    trial: int
    recipe: Recipe
    n_epochs: int
    weight: float


def n_refits(config: RunConfig, recipe: Recipe) -> int:
    """``config.refit_seeds``, or by default the model family's own number
    (:attr:`~carsearch.models.base.ModelPlugin.refit_members`, 5 unless a plugin says)."""
    if config.refit_seeds is not None:
        return config.refit_seeds
    members: int = plugins.instance("models", recipe.model).refit_members
    return members


def refit(
    config: RunConfig,
    prepared: Prepared,
    recipe: Recipe,
    n_epochs: int,
    device: torch.device,
    *,
    deadline: float | None = None,
) -> Refit:
    """Train :func:`n_refits` networks of ``recipe`` for ``n_epochs`` on train+val.

    Everything fitted (categories, medians, the numeric encoder's statistics, class
    weights) is fitted again on train + validation, the rows the refit trains on. With a
    ``deadline`` (``time.monotonic()``, ``--time-limit``) a member starts only while one
    more fits before it (the first always does), and stops its epochs at it.
    """
    seeds = tuple(derive_seed(config.seed, _REFIT_KEY, k) for k in range(n_refits(config, recipe)))
    spec, members, task = _train(config, prepared, recipe, n_epochs, seeds, device, deadline)
    seeds = seeds[: len(members)]  # a time limit may have kept fewer
    ensemble = Ensemble(members, task=prepared.final.schema.task, scale=task.scale).eval()
    return Refit(ensemble, recipe, spec, n_epochs, seeds, _test_scores(ensemble, prepared, task))


def seeds_per_part(weights: list[float], n_total: int) -> list[int]:
    """Refits of each configuration: in proportion to its weight, at least one; at most
    ``n_total + len(weights)`` in all, so an ensemble costs about one configuration's refit."""
    return [max(1, round(weight * n_total)) for weight in weights]


def refit_ensemble(
    config: RunConfig,
    prepared: Prepared,
    parts: list[Part],
    device: torch.device,
    *,
    deadline: float | None = None,
) -> Refit:
    """Refit each configuration of a post-hoc ensemble (:func:`seeds_per_part` seeds each)
    on train + validation, as :func:`refit` does; members weigh their part's weight
    shared among its seeds. The first part (the heaviest) names the ensemble's recipe."""
    counts = seeds_per_part([p.weight for p in parts], n_refits(config, parts[0].recipe))
    members: list[nn.Module] = []
    weights: list[float] = []
    records: list[dict[str, Any]] = []
    all_seeds: list[int] = []
    for part, count in zip(parts, counts, strict=True):
        seeds = tuple(derive_seed(config.seed, _REFIT_KEY, part.trial, k) for k in range(count))
        spec, trained, task = _train(
            config, prepared, part.recipe, part.n_epochs, seeds, device, deadline
        )
        count, seeds = len(trained), seeds[: len(trained)]  # a time limit may keep fewer
        members += trained
        weights += [part.weight / count] * count
        all_seeds += seeds
        records.append(
            {"trial": part.trial, "weight": part.weight, "best_epoch": part.n_epochs,
             "n_members": count, "seeds": list(seeds), **spec.to_dict()}
        )  # fmt: skip
    total = sum(weights)
    ensemble = Ensemble(
        members,
        task=prepared.final.schema.task,
        scale=task.scale,
        weights=[w / total for w in weights],
    ).eval()
    first = records[0]
    spec = NetworkSpec(
        first["model"], first["params"], tuple(first["embedding_dims"]), first["numeric_state"]
    )
    return Refit(
        ensemble, parts[0].recipe, spec, parts[0].n_epochs, tuple(all_seeds),
        _test_scores(ensemble, prepared, task), tuple(records),
    )  # fmt: skip


def _train(
    config: RunConfig,
    prepared: Prepared,
    recipe: Recipe,
    n_epochs: int,
    seeds: tuple[int, ...],
    device: torch.device,
    deadline: float | None = None,
) -> tuple[NetworkSpec, list[nn.Module], Task]:
    """One network of ``recipe`` per seed, trained ``n_epochs`` on train + validation; by a
    ``deadline``, fewer (the first always trains)."""
    encoded, rows = prepared.final, prepared.refit_rows
    spec = recipe.spec(encoded, rows)
    task = recipe.task(encoded, rows, device)
    train = Tensors.select(encoded, rows, device)
    logger.info(
        "refitting %d model%s on train+validation (%d rows, %d epochs each) ...",
        len(seeds),
        "" if len(seeds) == 1 else "s",
        len(rows),
        n_epochs,
    )
    members: list[nn.Module] = []
    longest = 0.0
    for number, seed in enumerate(seeds, start=1):
        if members and deadline is not None and time.monotonic() + longest > deadline:
            logger.info("time limit: the refit keeps %d of %d members", len(members), len(seeds))
            break
        started = time.monotonic()
        seed_everything(seed)
        if estimator(recipe.model) is None:
            members.append(
                _train_network(
                    config, recipe, spec, encoded.schema, train, task, n_epochs, seed, deadline
                )
            )
        else:
            members.append(
                refit_estimator(
                    recipe.model, recipe.params, train, encoded.schema,
                    task=task, n_epochs=n_epochs, seed=seed,
                )
            )  # fmt: skip
        longest = max(longest, time.monotonic() - started)
        logger.info("refit %d/%d trained", number, len(seeds))
    return spec, members, task


def _train_network(
    config: RunConfig,
    recipe: Recipe,
    spec: NetworkSpec,
    schema: Schema,
    train: Tensors,
    task: Task,
    n_epochs: int,
    seed: int,
    deadline: float | None,
) -> Network:
    """One network of ``spec`` trained ``n_epochs`` on ``train``, stopped at ``deadline``."""
    member = build_network(spec, schema).to(train.codes.device)
    optimizer = recipe.build_optimizer(member)
    fit(
        member,
        optimizer,
        train,
        None,
        task=task,
        batch_size=recipe.batch_size,
        max_epochs=n_epochs,
        seed=seed,
        scheduler=recipe.build_scheduler(optimizer, config.max_epochs),
        deadline=deadline,
    )
    return member


def _test_scores(ensemble: Ensemble, prepared: Prepared, task: Task) -> Scores:
    """The ensemble's scores on the test rows: the first and only time they are used."""
    outputs, y = test_outputs(ensemble, prepared)
    return task.score(outputs, y)


def test_outputs(ensemble: Ensemble, prepared: Prepared) -> tuple[torch.Tensor, torch.Tensor]:
    """The ensemble's outputs on the test rows, and their labels or targets (for scoring
    only: nothing is fitted on them)."""
    test = Tensors.select(prepared.final, prepared.split.test, ensemble.scale.device)
    with torch.inference_mode():
        return ensemble(test.codes, test.numbers), test.y
