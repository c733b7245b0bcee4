"""The search space, written once, define-by-run.

:func:`suggest` is the only description of the space: the objective calls it with a live
trial, and the refit replays the best parameters through it with
:class:`optuna.trial.FixedTrial`, so both always build the same model.
"""

from __future__ import annotations

import math
from typing import Any

import optuna
from optuna.trial import BaseTrial

from carsearch import plugins
from carsearch.config import RunConfig
from carsearch.data.schema import CLASSIFICATION, Schema
from carsearch.models.base import EstimatorPlugin, SearchContext
from carsearch.training.recipe import Recipe
from carsearch.training.schedulers import LR_SCHEDULERS
from carsearch.training.tasks import CLASS_WEIGHTS, LOSSES

#: Batch sizes for the smallest tables: at Car Evaluation's size (1,106 training rows),
#: batches of 32 or 64 spend most of a step in per-step overhead and gained no test accuracy;
#: 128-512 reached 1.000 on all three seeds. Larger tables scale them (see batch_sizes).
BATCH_SIZES: tuple[int, ...] = (128, 256, 512)
#: The largest batch the smallest choice grows to on large tables.
MAX_FIRST_BATCH = 2048

#: The PyTorch textbook's hand-tuned configuration, enqueued as a new study's first trial.
TEXTBOOK_PARAMS: dict[str, Any] = {
    "embedding_rule": "textbook",
    "embedding_dropout": 0.4,
    "n_layers": 3,
    "n_units_l0": 200,
    "n_units_l1": 100,
    "n_units_l2": 50,
    "dropout": 0.4,
    "batch_norm": True,
    "optimizer": "adam",
    "adam_lr": 0.001,
    "class_weight": "none",
}
#: Values of parameters added to the space after a study began: replaying one of its older
#: trials (to refit or export it) uses these, which is what those trials trained with.
ADDED_LATER: dict[str, Any] = {"class_weight": "none", "standard_clip": True}


def batch_sizes(n_train: int) -> tuple[int, ...]:
    """Three batch sizes, doubling, that keep an epoch at about 8-32 steps or more.

    The smallest is the power of two nearest ``n_train / 32``, at least 128 and at most
    :data:`MAX_FIRST_BATCH`: Car Evaluation keeps 128-512, and a table of 100,000 rows gets
    2048-8192, so its epochs are not thousands of tiny steps.
    """
    nearest = 2 ** round(math.log2(max(n_train, 1) / 32))
    first = min(max(BATCH_SIZES[0], nearest), MAX_FIRST_BATCH)
    return (first, 2 * first, 4 * first)


def search_context(schema: Schema, n_train: int) -> SearchContext:
    """What the model families' spaces may depend on, for ``schema`` and ``n_train`` rows."""
    return SearchContext(n_train, len(schema.columns), len(schema.numeric), schema.task)


def suggest(trial: BaseTrial, config: RunConfig, schema: Schema, n_train: int) -> Recipe:
    """Sample (or, with a ``FixedTrial``, replay) one configuration.

    Shared parameters exist only where they apply: the model family when the run names
    several (first: what follows depends on it), the embedding rule for a table with
    categorical columns and the numeric encoding for one with numeric columns (networks
    only: an estimator family trains on raw values), the class weights for a classification
    target, the loss for a regression.
    """
    params: dict[str, Any] = {}
    model = config.models[0]
    if len(config.models) > 1:  # one study, several families: the best may be either
        model = params["model"] = str(trial.suggest_categorical("model", list(config.models)))
    family = plugins.instance("models", model)
    context = search_context(schema, n_train)
    if isinstance(family, EstimatorPlugin):  # trains on the raw values, by its own rules
        params.update(family.search_space(trial, context))
        params.update(_suggest_task(trial, config, schema))
        return Recipe(model, "", (), 0, "", params)
    dims: tuple[int, ...] = ()
    if schema.columns:
        rule_name = str(trial.suggest_categorical("embedding_rule", list(config.embedding_rules)))
        rule = plugins.instance("embedding_rules", rule_name)
        params.update(embedding_rule=rule_name, **rule.search_space(trial))
        dims = tuple(rule.dim(column.n_categories, params) for column in schema.columns)
    if schema.numeric:
        encoding = str(trial.suggest_categorical("numeric_encoding", list(config.numeric_encoders)))
        params["numeric_encoding"] = encoding
        params.update(plugins.instance("numeric_encoders", encoding).search_space(trial))
    params.update(family.search_space(trial, context))
    optimizer = str(trial.suggest_categorical("optimizer", list(config.optimizers)))
    params["optimizer"] = optimizer
    params.update(plugins.instance("optimizers", optimizer).search_space_for(trial, context))
    params.update(_suggest_task(trial, config, schema))
    batch_size = int(trial.suggest_categorical("batch_size", list(batch_sizes(n_train))))
    lr_scheduler = str(trial.suggest_categorical("lr_scheduler", list(LR_SCHEDULERS)))
    params.update(batch_size=batch_size, lr_scheduler=lr_scheduler)
    return Recipe(model, optimizer, dims, batch_size, lr_scheduler, params)


def _suggest_task(trial: BaseTrial, config: RunConfig, schema: Schema) -> dict[str, Any]:
    """The class weights of a classification, or the loss of a regression."""
    if schema.task == CLASSIFICATION:
        # One choice unless asked to search: a one-value parameter is stored but never sampled.
        weights = CLASS_WEIGHTS if config.class_weight == "search" else (config.class_weight,)
        return {"class_weight": trial.suggest_categorical("class_weight", list(weights))}
    return {"loss": trial.suggest_categorical("loss", list(LOSSES))}


def replay(params: dict[str, Any], config: RunConfig, schema: Schema, n_train: int) -> Recipe:
    """The recipe of stored trial ``params``, through the same code as the search."""
    fixed = {**ADDED_LATER, **params}
    return suggest(optuna.trial.FixedTrial(fixed), config, schema, n_train)


def first_trials(config: RunConfig, context: SearchContext) -> list[tuple[str, dict[str, Any]]]:
    """What a new study tries first, as ``(origin, params)``: the textbook trial, then each
    model family's own first configuration (:meth:`ModelFamily.first_params`)."""
    several = len(config.models) > 1
    firsts = []
    textbook = textbook_params(config)
    if textbook is not None:
        firsts.append(("textbook", textbook))
    for model in config.models:
        params = plugins.instance("models", model).first_params(context)
        if params is not None:
            firsts.append((f"{model} defaults", {"model": model, **params} if several else params))
    return firsts


def textbook_params(config: RunConfig) -> dict[str, Any] | None:
    """The textbook trial, when this run's space contains it."""
    contains = (
        "mlp" in config.models
        and "textbook" in config.embedding_rules
        and "adam" in config.optimizers
    )
    if not contains:
        return None
    return {**TEXTBOOK_PARAMS, "model": "mlp"} if len(config.models) > 1 else dict(TEXTBOOK_PARAMS)
