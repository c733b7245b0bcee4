"""The built-in plugins pass the contract suite plugin authors reuse; broken plugins fail it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from optuna.trial import BaseTrial
from torch import nn

from carsearch import plugins
from carsearch.models.base import EstimatorPlugin, ModelPlugin, SearchContext
from carsearch.models.mlp import EmbeddingMLPPlugin
from carsearch.models.numeric import Standard
from carsearch.models.rules import EmbeddingRule
from carsearch.testing import (
    DatasetContract,
    EmbeddingRuleContract,
    EstimatorContract,
    ModelContract,
    NumericEncoderContract,
    OptimizerContract,
)
from carsearch.training.optimizers import Adam


def builtins(kind: str) -> list[str]:
    """The names carsearch itself registers in ``kind``'s entry-point group."""
    return sorted(info.name for info in plugins.entries(kind) if info.package == "carsearch")


def families(base: type) -> list[str]:
    """carsearch's own model families of one kind (networks, or estimators)."""
    return [name for name in builtins("models") if isinstance(plugins.load("models", name), base)]


@pytest.mark.parametrize("plugin_name", families(ModelPlugin))
class TestModels(ModelContract):
    pass


@pytest.mark.parametrize("plugin_name", families(EstimatorPlugin))
class TestEstimators(EstimatorContract):
    pass


@pytest.mark.parametrize("plugin_name", builtins("embedding_rules"))
class TestEmbeddingRules(EmbeddingRuleContract):
    pass


@pytest.mark.parametrize("plugin_name", builtins("optimizers"))
class TestOptimizers(OptimizerContract):
    pass


@pytest.mark.parametrize("plugin_name", builtins("numeric_encoders"))
class TestNumericEncoders(NumericEncoderContract):
    pass


@pytest.mark.parametrize("plugin_name", builtins("datasets"))
class TestDatasets(DatasetContract):
    @pytest.fixture(autouse=True)
    def _offline(self, car_csv: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Car Evaluation from the shared copy; the test skips where there is none."""
        monkeypatch.setenv("CARSEARCH_DATA_HOME", str(car_csv.parent))


def test_every_kind_has_builtins() -> None:
    assert {kind: builtins(kind) for kind in plugins.GROUPS} == {
        "models": ["lightgbm", "mlp", "tabm"],
        "embedding_rules": ["fastai", "fixed", "textbook"],
        "optimizers": ["adam", "rmsprop", "sgd"],
        "numeric_encoders": ["periodic", "ple", "quantile", "robust", "standard"],
        "datasets": ["car_evaluation"],
    }


class _ZeroRule(EmbeddingRule):
    def dim(self, cardinality: int, params: dict[str, Any]) -> int:
        return cardinality // 2  # 0 for a single-category column


class _NumpyRule(EmbeddingRule):
    def dim(self, cardinality: int, params: dict[str, Any]) -> int:
        return np.int64(cardinality)  # type: ignore[return-value]


class _BareLr(Adam):
    def search_space(self, trial: BaseTrial) -> dict[str, Any]:
        return {"lr": trial.suggest_float("lr", 1e-4, 1e-1, log=True)}

    def build(self, parameters: Any, params: dict[str, Any]) -> torch.optim.Optimizer:
        return torch.optim.Adam(parameters, lr=params["lr"])


class _SharedName(EmbeddingMLPPlugin):
    def search_space(self, trial: BaseTrial, context: SearchContext) -> dict[str, Any]:
        batch = trial.suggest_int("batch_size", 1, 8)
        return {**super().search_space(trial, context), "batch_size": batch}


class _Flat(EmbeddingMLPPlugin):
    def build(self, n_features: int, n_outputs: int, params: dict[str, Any]) -> nn.Module:
        return nn.Sequential(super().build(n_features, n_outputs, params), nn.Flatten(0))


class _Unbounded(Standard):
    def build(self, state: dict[str, Any], params: dict[str, Any]) -> nn.Module:
        return _Square()


class _Square(nn.Module):
    def forward(self, values: torch.Tensor) -> torch.Tensor:
        return values**40  # overflows to inf for large inputs


class _NotJson(Standard):
    def fit(self, values: np.ndarray, params: dict[str, Any]) -> dict[str, Any]:
        return {**super().fit(values, params), "mean": values.mean(axis=0)}


@pytest.mark.parametrize(
    ("check", "plugin", "message"),
    [
        (
            EmbeddingRuleContract().test_dim_is_a_positive_int_for_cardinalities_1_to_1000,
            _ZeroRule(),
            r"dim\(\) must return ints >= 1, got \[0\]",
        ),
        (
            EmbeddingRuleContract().test_dim_is_a_positive_int_for_cardinalities_1_to_1000,
            _NumpyRule(),
            r"dim\(\) must return ints >= 1, got \[np.int64\(1\)",
        ),
        (
            ModelContract().test_param_names_do_not_collide_with_the_shared_ones,
            _SharedName(),
            r"parameter names \['batch_size'\] are carsearch's own",
        ),
        (
            ModelContract().test_builds_and_gives_batch_by_outputs,
            _Flat(),
            r"outputs of shape \(48,\), expected \(16, 3\)",
        ),
        (
            NumericEncoderContract().test_builds_a_fixed_width_finite_map,
            _Unbounded(),
            r"features must stay finite",
        ),
        (
            NumericEncoderContract().test_the_fitted_state_is_json_and_the_same_for_the_same_rows,
            _NotJson(),
            r"ndarray is not JSON serializable",
        ),
    ],
    ids=["dim-0", "numpy-int", "shared-name", "flat-outputs", "unbounded", "not-json"],
)
def test_the_suite_catches_a_broken_plugin(check: Any, plugin: Any, message: str) -> None:
    with pytest.raises((AssertionError, TypeError), match=message):
        check(plugin)


def test_the_suite_catches_an_unprefixed_optimizer_param() -> None:
    with pytest.raises(AssertionError, match=r"name these bare_<param>: \['lr'\]"):
        OptimizerContract().test_param_names_carry_the_family_prefix(_BareLr(), "bare")
