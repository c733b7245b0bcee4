"""Contracts of model, embedding-rule, optimizer and data-set plugins."""

from __future__ import annotations

import pytest
import torch

from carsearch.config import RunConfig
from carsearch.data.datasets import DatasetPlugin
from carsearch.data.prepare import prepare
from carsearch.data.schema import MISSING
from carsearch.data.table import Table
from carsearch.models.base import ModelPlugin
from carsearch.models.rules import EmbeddingRule
from carsearch.testing.common import (
    PluginContract,
    SearchSpaceContract,
    assert_prefixed,
    sample,
    space_of,
)
from carsearch.training.optimizers import OptimizerPlugin

#: The feature width and outputs the model checks build for.
N_FEATURES, N_OUTPUTS = 12, 3


class ModelContract(SearchSpaceContract):
    """A model plugin builds a module mapping ``(batch, features)`` to raw outputs."""

    kind = "models"
    base = ModelPlugin

    def run_config(self, plugin_name: str) -> RunConfig:
        return RunConfig(model=plugin_name)

    def test_builds_and_gives_batch_by_outputs(self, plugin: ModelPlugin) -> None:
        for _, params in sample(space_of(plugin)):
            model = plugin.build(N_FEATURES, N_OUTPUTS, params)
            assert isinstance(model, torch.nn.Module)
            for mode, n_rows in ((True, 16), (False, 16), (False, 1)):
                outputs = model.train(mode)(torch.randn(n_rows, N_FEATURES))
                shape = tuple(outputs.shape)
                ok = shape == (n_rows, N_OUTPUTS) or (
                    len(shape) == 3 and shape[0] == n_rows and shape[2] == N_OUTPUTS
                )
                assert ok, f"outputs of shape {shape}, expected {(n_rows, N_OUTPUTS)}"
                assert outputs.dtype == torch.float32 and bool(outputs.isfinite().all())

    def test_trains_one_step(self, plugin: ModelPlugin) -> None:
        for _, params in sample(space_of(plugin), n_trials=3):
            model = plugin.build(N_FEATURES, N_OUTPUTS, params)
            before = [p.detach().clone() for p in model.parameters()]
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
            outputs = model.train()(torch.randn(32, N_FEATURES))
            loss = outputs.square().mean()
            loss.backward()
            optimizer.step()
            assert bool(loss.isfinite())
            assert any(
                not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True)
            )

    def test_same_seed_same_weights_and_state_dict_round_trip(self, plugin: ModelPlugin) -> None:
        # Refits are seeded, and bundles reload weights into a freshly built model.
        params = sample(space_of(plugin), n_trials=1)[0][1]
        models = []
        for _ in range(2):
            torch.manual_seed(0)
            models.append(plugin.build(N_FEATURES, N_OUTPUTS, params).eval())
        first, second = models
        second.load_state_dict(first.state_dict(), strict=True)
        features = torch.randn(8, N_FEATURES)
        assert torch.equal(first(features), second(features))


class EmbeddingRuleContract(SearchSpaceContract):
    """An embedding rule maps any cardinality to an ``int`` width of at least 1."""

    kind = "embedding_rules"
    base = EmbeddingRule

    def run_config(self, plugin_name: str) -> RunConfig:
        return RunConfig(embedding_rules=(plugin_name,))

    def test_dim_is_a_positive_int_for_cardinalities_1_to_1000(self, plugin: EmbeddingRule) -> None:
        for _, params in sample(space_of(plugin)):
            dims = [plugin.dim(cardinality, params) for cardinality in range(1, 1001)]
            wrong = [d for d in dims if type(d) is not int or d < 1]
            assert not wrong, f"dim() must return ints >= 1, got {wrong[:5]}"
            assert dims == [plugin.dim(cardinality, params) for cardinality in range(1, 1001)]


class OptimizerContract(SearchSpaceContract):
    """An optimizer plugin builds a stepping ``torch.optim.Optimizer`` from its own params."""

    kind = "optimizers"
    base = OptimizerPlugin

    def run_config(self, plugin_name: str) -> RunConfig:
        return RunConfig(optimizers=(plugin_name,))

    def test_param_names_carry_the_family_prefix(
        self, plugin: OptimizerPlugin, plugin_name: str
    ) -> None:
        # Families share one study: a bare ``lr`` would get two different ranges.
        assert_prefixed(space_of(plugin), plugin_name)

    def test_builds_an_optimizer_that_steps(self, plugin: OptimizerPlugin) -> None:
        for _, params in sample(space_of(plugin)):
            model = torch.nn.Linear(4, 3)
            before = model.weight.detach().clone()
            optimizer = plugin.build(model.parameters(), params)
            assert isinstance(optimizer, torch.optim.Optimizer)
            assert "lr" in optimizer.param_groups[0], "learning-rate schedulers need 'lr'"
            model(torch.randn(8, 4)).square().mean().backward()
            optimizer.step()
            assert not torch.equal(before, model.weight)


class DatasetContract(PluginContract):
    """A data-set plugin returns the same valid, splittable table every time."""

    kind = "datasets"
    base = DatasetPlugin

    @pytest.fixture
    def table(self, plugin: DatasetPlugin) -> Table:
        return plugin.load()

    def test_returns_a_valid_table(self, table: Table) -> None:
        assert isinstance(table, Table)
        assert table.target in table.frame.columns and table.kinds, "needs a feature column"
        assert MISSING not in set(table.frame[table.target])
        assert table.frame[table.target].nunique() >= 2

    def test_prepares_for_a_stratified_run(self, plugin_name: str, table: Table) -> None:
        prepared = prepare(RunConfig(dataset=plugin_name), table)
        assert len(prepared.split.train) and len(prepared.split.val) and len(prepared.split.test)

    def test_loads_the_same_data_again(self, plugin: DatasetPlugin, table: Table) -> None:
        # A resumed study checks the data's fingerprint.
        assert plugin.load().fingerprint() == table.fingerprint()
