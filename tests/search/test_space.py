"""The search space: sampled once, replayed identically, shaped by the table."""

from __future__ import annotations

import optuna
import pytest

from carsearch import RunConfig
from carsearch.data.schema import UNKNOWN, Column, NumericColumn, Schema
from carsearch.models.network import NetworkSpec, build_network
from carsearch.search.space import (
    TEXTBOOK_PARAMS,
    batch_sizes,
    replay,
    suggest,
    textbook_params,
)
from carsearch.training.optimizers import SGD_MAX_LR_REGRESSION

SCHEMA = Schema(
    columns=tuple(Column(f"c{i}", (UNKNOWN, *"abcd"[:n])) for i, n in enumerate([3, 3, 2])),
    target="t",
    classes=("x", "y", "z"),
)
MIXED = Schema(SCHEMA.columns, "t", ("x", "y"), numeric=(NumericColumn("n", 1.0, True),))
NUMERIC_ONLY = Schema((), "t", ("x", "y"), numeric=(NumericColumn("n", 1.0, False),))
N_TRAIN = 1106


def sampled_params(config: RunConfig, n: int, schema: Schema = SCHEMA) -> list[dict]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    found = []
    for _ in range(n):
        trial = study.ask()
        recipe = suggest(trial, config, schema, N_TRAIN)
        assert recipe.params == trial.params
        found.append(trial.params)
        study.tell(trial, 0.0)
    return found


def test_replay_rebuilds_the_same_recipe_and_model() -> None:
    config = RunConfig()
    for params in sampled_params(config, 20):
        live = suggest(optuna.trial.FixedTrial(params), config, SCHEMA, N_TRAIN)
        again = replay(params, config, SCHEMA, N_TRAIN)
        assert again == live
        model = build_network(NetworkSpec("mlp", params, again.embedding_dims), SCHEMA)
        layers = model.backbone.layers  # type: ignore[union-attr]
        hidden = [m.out_features for m in layers if hasattr(m, "out_features")]
        assert hidden[:-1] == [params[f"n_units_l{i}"] for i in range(params["n_layers"])]


def test_space_covers_every_family_and_rule() -> None:
    params = sampled_params(RunConfig(), 60)
    assert {p["optimizer"] for p in params} == {"sgd", "adam", "rmsprop"}
    assert {p["embedding_rule"] for p in params} == {"textbook", "fastai", "fixed"}
    assert {p["class_weight"] for p in params} == {"none"}  # searched only when asked
    assert min(p["n_layers"] for p in params) == 1  # no linear model of categories alone
    for p in params:
        prefix = p["optimizer"] + "_"
        assert any(key.startswith(prefix) for key in p)
        others = {"sgd_", "adam_", "rmsprop_"} - {prefix}
        assert not any(key.startswith(other) for key in p for other in others)
        assert ("embedding_dim" in p) == (p["embedding_rule"] == "fixed")
        assert "numeric_encoding" not in p  # no numeric column, no encoder to choose


def test_class_weights_are_searched_or_fixed_as_asked() -> None:
    searched = sampled_params(RunConfig(class_weight="search"), 30)
    assert {p["class_weight"] for p in searched} == {"none", "balanced"}
    fixed = sampled_params(RunConfig(class_weight="balanced"), 5)
    assert {p["class_weight"] for p in fixed} == {"balanced"}


def test_the_space_follows_the_columns_the_table_has() -> None:
    mixed = sampled_params(RunConfig(), 40, MIXED)
    assert {p["numeric_encoding"] for p in mixed} == {"standard", "quantile", "ple", "periodic"}
    assert all("embedding_rule" in p and "embedding_dropout" in p for p in mixed)
    assert all(("ple_n_bins" in p) == (p["numeric_encoding"] == "ple") for p in mixed)
    numbers_only = sampled_params(RunConfig(), 10, NUMERIC_ONLY)
    assert not any("embedding_rule" in p or "embedding_dropout" in p for p in numbers_only)


def test_restricted_families_are_respected() -> None:
    config = RunConfig(optimizers=("sgd",), embedding_rules=("fastai",), numeric_encoders=("ple",))
    params = sampled_params(config, 10, MIXED)
    assert {p["optimizer"] for p in params} == {"sgd"}
    assert {p["numeric_encoding"] for p in params} == {"ple"}
    assert textbook_params(config) is None


def test_textbook_params_build_the_textbook_model() -> None:
    params = textbook_params(RunConfig())
    assert params == TEXTBOOK_PARAMS
    full = {**params, "adam_weight_decay": 1e-6, "batch_size": 128, "lr_scheduler": "none"}
    recipe = replay(full, RunConfig(), SCHEMA, N_TRAIN)
    assert recipe.embedding_dims == (2, 2, 1)  # min(50, (n + 1) // 2), n without <unknown>


@pytest.mark.parametrize("class_weight", ["none", "search"])
def test_a_trial_stored_before_class_weights_replays_unweighted(class_weight: str) -> None:
    """Even where the study now searches class weights, a trial that never chose one is
    replayed as it trained: unweighted."""
    config = RunConfig(class_weight=class_weight)
    old = {k: v for k, v in TEXTBOOK_PARAMS.items() if k != "class_weight"}
    full = {**old, "adam_weight_decay": 1e-6, "batch_size": 128, "lr_scheduler": "none"}
    replayed = replay(full, config, SCHEMA, N_TRAIN)
    unweighted = replay({**full, "class_weight": "none"}, config, SCHEMA, N_TRAIN)
    assert replayed.params["class_weight"] == "none"
    assert replayed == unweighted


def test_a_trial_stored_before_standard_clip_replays_clipped() -> None:
    old = {
        "numeric_encoding": "standard",
        "n_layers": 0,
        "optimizer": "adam",
        "adam_lr": 1e-3,
        "adam_weight_decay": 1e-6,
        "class_weight": "none",
        "batch_size": 128,
        "lr_scheduler": "none",
    }
    assert replay(old, RunConfig(), NUMERIC_ONLY, N_TRAIN).params["standard_clip"] is True


@pytest.mark.parametrize(("rule", "expected"), [("textbook", 2), ("fastai", 3)])
def test_embedding_rules(rule: str, expected: int) -> None:
    params = {
        **TEXTBOOK_PARAMS,
        "embedding_rule": rule,
        "adam_weight_decay": 1e-6,
        "batch_size": 128,
        "lr_scheduler": "cosine",
    }
    assert replay(params, RunConfig(), SCHEMA, N_TRAIN).embedding_dims[0] == expected


@pytest.mark.parametrize(
    ("n_train", "expected"),
    [
        (100, (128, 256, 512)),
        (1106, (128, 256, 512)),
        (6400, (256, 512, 1024)),
        (34_500, (1024, 2048, 4096)),
        (1_000_000, (2048, 4096, 8192)),
    ],
)
def test_batch_sizes_grow_with_the_table(n_train: int, expected: tuple[int, ...]) -> None:
    assert batch_sizes(n_train) == expected


def test_sgd_on_a_regression_keeps_to_learning_rates_that_do_not_diverge() -> None:
    regression = Schema((), "y", (), numeric=NUMERIC_ONLY.numeric, task="regression")
    config = RunConfig(optimizers=("sgd",))
    sampled = sampled_params(config, 60, regression)
    assert {p["loss"] for p in sampled} == {"mse", "huber"}
    rates = [p["sgd_lr"] for p in sampled]
    assert max(rates) <= SGD_MAX_LR_REGRESSION and min(rates) >= 1e-3
    assert max(rates) > SGD_MAX_LR_REGRESSION / 2  # the bound is a range, not one value
    classes = [p["sgd_lr"] for p in sampled_params(config, 60, NUMERIC_ONLY)]
    assert max(classes) > 0.1  # cross entropy keeps the wide range (Car Evaluation's)
