"""Batched asks store every trial as the one-at-a-time search does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
import torch

from carsearch.data.prepare import prepare
from carsearch.search.batched import optimize_batched
from carsearch.search.objective import Objective
from carsearch.search.space import suggest
from carsearch.training.batched import group_key
from tests.helpers import tiny_config

SHARED: dict[str, Any] = {
    "n_layers": 1,
    "n_units_l0": 16,
    "batch_norm": True,
    "optimizer": "adam",
    "adam_weight_decay": 1e-5,
    "batch_size": 128,
    "lr_scheduler": "none",
    "embedding_rule": "fixed",
    "embedding_dim": 4,
    "embedding_dropout": 0.1,
    "class_weight": "none",
}
#: Three trials of one shape (one batch) and one of another (trained alone).
PARAMS = [
    {**SHARED, "adam_lr": 1e-3, "dropout": 0.1},
    {**SHARED, "adam_lr": 1e-2, "dropout": 0.3},
    {**SHARED, "n_units_l0": 32, "adam_lr": 3e-3, "dropout": 0.0},
    {**SHARED, "adam_lr": 5e-3, "dropout": 0.2},
]


def stored(tmp_path: Path, name: str, batch: int) -> list[optuna.trial.FrozenTrial]:
    config = tiny_config(tmp_path, pruner="none")
    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path / f'{name}.db'}",
        study_name=name,
        sampler=optuna.samplers.TPESampler(seed=0, constant_liar=True),
    )
    for params in PARAMS:
        study.enqueue_trial(params)
    objective = Objective(config, prepare(config), torch.device("cpu"))
    if batch == 1:
        study.optimize(objective, n_trials=len(PARAMS))
    else:
        optimize_batched(study, objective, n_trials=len(PARAMS), batch=batch)
    return study.get_trials()


def test_three_of_the_trials_form_one_batch(tmp_path: Path) -> None:
    config = tiny_config(tmp_path)
    prepared = prepare(config)
    study = optuna.create_study()
    keys = []
    for params in PARAMS:
        study.enqueue_trial(params)
        recipe = suggest(study.ask(), config, prepared.search.schema, len(prepared.split.train))
        keys.append(group_key(recipe))
    assert keys[0] == keys[1] == keys[3] != keys[2]


def test_a_batched_study_stores_what_the_lone_search_stores(tmp_path: Path) -> None:
    lone, batched = stored(tmp_path, "lone", 1), stored(tmp_path, "batched", 4)
    assert [t.state for t in batched] == [t.state for t in lone]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in batched)
    for one, other in zip(lone, batched, strict=True):
        assert other.params == one.params
        assert other.user_attrs["seed"] == one.user_attrs["seed"]
        assert other.user_attrs["best_epoch"] == one.user_attrs["best_epoch"]
        assert sorted(other.intermediate_values) == sorted(one.intermediate_values)
        want = [one.intermediate_values[epoch] for epoch in sorted(one.intermediate_values)]
        got = [other.intermediate_values[epoch] for epoch in sorted(other.intermediate_values)]
        assert got == pytest.approx(want, rel=1e-3)
        assert other.value == pytest.approx(one.value, rel=1e-3)
