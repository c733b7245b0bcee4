"""The search space: sampled once, replayed identically."""

from __future__ import annotations

import optuna
import pytest

from carsearch import RunConfig
from carsearch.data.schema import Column, Schema
from carsearch.search.space import TEXTBOOK_PARAMS, replay, suggest, textbook_params

SCHEMA = Schema(
    columns=tuple(Column(f"c{i}", tuple("abcd"[:n])) for i, n in enumerate([4, 4, 3])),
    target="t",
    classes=("x", "y", "z"),
)


def sampled_params(config: RunConfig, n: int) -> list[dict]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    found = []
    for _ in range(n):
        trial = study.ask()
        recipe = suggest(trial, config, SCHEMA)
        assert recipe.params == trial.params
        found.append(trial.params)
        study.tell(trial, 0.0)
    return found


def test_replay_rebuilds_the_same_recipe_and_model() -> None:
    config = RunConfig()
    for params in sampled_params(config, 20):
        live = suggest(optuna.trial.FixedTrial(params), config, SCHEMA)
        again = replay(params, config, SCHEMA)
        assert again == live
        model = again.build_model(SCHEMA)
        hidden = [m.out_features for m in model.layers if hasattr(m, "out_features")]
        assert hidden[:-1] == [params[f"n_units_l{i}"] for i in range(params["n_layers"])]


def test_space_covers_every_family_and_rule() -> None:
    params = sampled_params(RunConfig(), 60)
    assert {p["optimizer"] for p in params} == {"sgd", "adam", "rmsprop"}
    assert {p["embedding_rule"] for p in params} == {"textbook", "fastai", "fixed"}
    for p in params:
        prefix = p["optimizer"] + "_"
        assert any(key.startswith(prefix) for key in p)
        others = {"sgd_", "adam_", "rmsprop_"} - {prefix}
        assert not any(key.startswith(other) for key in p for other in others)
        assert ("embedding_dim" in p) == (p["embedding_rule"] == "fixed")


def test_restricted_families_are_respected() -> None:
    config = RunConfig(optimizers=("sgd",), embedding_rules=("fastai",))
    params = sampled_params(config, 10)
    assert {p["optimizer"] for p in params} == {"sgd"}
    assert textbook_params(config) is None


def test_textbook_params_build_the_textbook_model() -> None:
    params = textbook_params(RunConfig())
    assert params == TEXTBOOK_PARAMS
    full = {**params, "adam_weight_decay": 1e-6, "batch_size": 128, "lr_scheduler": "none"}
    recipe = replay(full, RunConfig(), SCHEMA)
    assert recipe.embedding_dims == (2, 2, 2)  # min(50, (n + 1) // 2)
    model = recipe.build_model(SCHEMA)
    widths = [m.out_features for m in model.layers if hasattr(m, "out_features")]
    assert widths == [200, 100, 50, 3]


@pytest.mark.parametrize(("rule", "expected"), [("textbook", 2), ("fastai", 3)])
def test_embedding_rules(rule: str, expected: int) -> None:
    params = {
        **TEXTBOOK_PARAMS,
        "embedding_rule": rule,
        "adam_weight_decay": 1e-6,
        "batch_size": 128,
        "lr_scheduler": "cosine",
    }
    assert replay(params, RunConfig(), SCHEMA).embedding_dims[0] == expected
