"""The linear path: the space holds a linear model, and a search that tries it matches ridge."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import torch

import carsearch
from carsearch import RunConfig
from carsearch.bundle.format import MANIFEST
from carsearch.data.prepare import prepare
from carsearch.data.schema import NumericColumn, Schema
from carsearch.models.network import NetworkSpec, build_network, fit_numeric_state
from carsearch.search.space import suggest
from helpers import tiny_config

#: The linear configuration: no hidden layer, numbers standardized without clipping.
LINEAR = {
    "numeric_encoding": "standard",
    "standard_clip": False,
    "n_layers": 0,
    "optimizer": "adam",
    "adam_lr": 0.03,
    "adam_weight_decay": 1e-7,
    "loss": "mse",
    "batch_size": 128,
    "lr_scheduler": "cosine",
}


def linear_frame(n_rows: int = 300, seed: int = 0) -> pd.DataFrame:
    """``y`` linear in 8 numbers of different scales and offsets, plus noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_rows, 8)) * rng.uniform(1, 10, 8) + rng.uniform(-20, 20, 8)
    weights = rng.normal(size=8)
    y = ((x - x.mean(0)) / x.std(0)) @ weights + rng.normal(scale=0.5, size=n_rows)
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(8)])
    frame["y"] = y
    return frame


def test_the_space_produces_a_linear_model_of_the_numbers() -> None:
    numeric = tuple(NumericColumn(f"x{i}", 0.0, False) for i in range(8))
    schema = Schema((), "y", (), numeric=numeric)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    linear = []
    for _ in range(80):
        trial = study.ask()
        recipe = suggest(trial, RunConfig(), schema, 1000)
        study.tell(trial, 0.0)
        params = recipe.params
        if params["n_layers"] == 0 and params.get("standard_clip") is False:
            linear.append(params)
            assert "dropout" not in params and "batch_norm" not in params  # nothing to apply to
    assert linear, "no linear configuration in 80 random samples"
    rng = np.random.default_rng(0)
    values = rng.normal(size=(50, 8)) * 5
    state = fit_numeric_state(schema, values, linear[0])
    network = build_network(NetworkSpec("mlp", linear[0], (), state), schema).eval()
    codes = torch.zeros(3, 0, dtype=torch.long)
    a, b = torch.randn(3, 8) * 50, torch.randn(3, 8) * 50  # far past the training range
    with torch.no_grad():
        mixed = network(codes, 0.3 * a + 0.7 * b)
        expected = 0.3 * network(codes, a) + 0.7 * network(codes, b)
    torch.testing.assert_close(mixed, expected, rtol=1e-4, atol=1e-4)  # affine in the numbers


def test_a_search_that_tries_the_linear_model_matches_ridge_and_exports(tmp_path: Path) -> None:
    sklearn = pytest.importorskip("sklearn.linear_model", reason="pip install 'carsearch[bench]'")
    data = tmp_path / "linear.csv"
    linear_frame().to_csv(data, index=False)
    config = tiny_config(
        tmp_path,
        data=str(data),
        target="y",
        task="regression",
        n_trials=2,
        max_epochs=60,
        patience=10,
        study_name="linear",
        out=str(tmp_path / "bundle"),
    )
    # The linear configuration goes first, as a portfolio would put it; TPE samples the next.
    optuna.create_study(storage=config.storage, study_name="linear").enqueue_trial(LINEAR)
    summary = carsearch.run(config).summary
    assert summary.best_params["n_layers"] == 0
    prepared = prepare(config)
    numbers = prepared.table.features.to_numpy(dtype=float)
    target = prepared.table.frame["y"].to_numpy()
    fit_rows, test_rows = prepared.refit_rows, prepared.split.test
    ridge = sklearn.RidgeCV().fit(numbers[fit_rows], target[fit_rows])
    errors = ridge.predict(numbers[test_rows]) - target[test_rows]
    ridge_rmse = float(np.sqrt(np.mean(errors**2)))
    assert summary.test is not None and summary.test["rmse"] <= 1.05 * ridge_rmse
    manifest = json.loads((Path(summary.bundle) / MANIFEST).read_text())
    assert manifest["torchscript"]["passed"]
    pytest.importorskip("onnxruntime", reason="pip install 'carsearch[onnx]'")
    assert manifest["onnx"]["passed"]
