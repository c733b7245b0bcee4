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
from dataclasses import dataclass

import torch

from carsearch import plugins
from carsearch.config import RunConfig
from carsearch.data.prepare import Prepared
from carsearch.models.network import Ensemble, Network, NetworkSpec, build_network
from carsearch.training.device import derive_seed, seed_everything
from carsearch.training.loop import Tensors, fit
from carsearch.training.metrics import Scores
from carsearch.training.recipe import Recipe

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
    encoded, rows = prepared.final, prepared.refit_rows
    spec = recipe.spec(encoded, rows)
    task = recipe.task(encoded, rows, device)
    train = Tensors.select(encoded, rows, device)
    seeds = tuple(derive_seed(config.seed, _REFIT_KEY, k) for k in range(n_refits(config, recipe)))
    members: list[Network] = []
    longest = 0.0
    for seed in seeds:
        if members and deadline is not None and time.monotonic() + longest > deadline:
            logger.info("time limit: the refit keeps %d of %d members", len(members), len(seeds))
            seeds = seeds[: len(members)]
            break
        started = time.monotonic()
        seed_everything(seed)
        member = build_network(spec, encoded.schema).to(device)
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
        members.append(member)
        longest = max(longest, time.monotonic() - started)
    ensemble = Ensemble(members, task=encoded.schema.task, scale=task.scale).eval()
    test = Tensors.select(encoded, prepared.split.test, device)
    with torch.inference_mode():
        scores = task.score(ensemble(test.codes, test.numbers), test.y)
    return Refit(ensemble, recipe, spec, n_epochs, seeds, scores)
