"""The contract every plugin keeps, as pytest tests that plugin packages reuse.

Subclass one contract class per plugin in your own test module and set ``name`` to the
plugin's entry-point name; pytest then runs every check on the plugin loaded through the
registry, exactly as ``carsearch run`` loads it (so the package must be installed)::

    from carsearch.testing import ModelContract

    class TestResMLP(ModelContract):
        name = "resmlp"

carsearch's built-ins pass the same suite (``tests/test_contracts.py``), parametrized over
``plugin_name``. Checks sample parameters on real Optuna trials (in memory, seeded), replay
them with :class:`optuna.trial.FixedTrial`, and use a tiny generated schema: no files, no
network, a second or two per plugin. Importing this module needs pytest.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, ClassVar

import optuna
import pytest
import torch
from optuna.trial import BaseTrial, FixedTrial

from carsearch import plugins
from carsearch.config import RunConfig
from carsearch.data.datasets import DatasetPlugin
from carsearch.data.prepare import prepare
from carsearch.data.schema import MISSING, Column, Schema
from carsearch.data.table import Table
from carsearch.exceptions import PluginError
from carsearch.models.base import ModelPlugin
from carsearch.models.rules import EmbeddingRule
from carsearch.search.space import replay, suggest
from carsearch.training.optimizers import OptimizerPlugin

#: Trial parameters that carsearch's search space itself suggests; no plugin may use them.
SHARED_PARAMS = frozenset({"embedding_rule", "optimizer", "batch_size", "lr_scheduler"})
#: Plugin kinds with a search space; each study holds one model and several of the others.
SPACE_KINDS = ("models", "embedding_rules", "optimizers")
#: Sampled trials per check: enough to reach most branches of a define-by-run space.
N_SAMPLES = 8

Space = Callable[[BaseTrial], dict[str, Any]]
Sample = tuple[dict[str, Any], dict[str, Any]]


def tiny_schema() -> Schema:
    """Four columns of 1, 2, 5 and 13 categories (a constant one too), three classes."""
    sizes = {"constant": 1, "pair": 2, "five": 5, "many": 13}
    columns = tuple(
        Column(name, tuple(f"{name}{i}" for i in range(size))) for name, size in sizes.items()
    )
    return Schema(columns=columns, target="label", classes=("a", "b", "c"))


def random_codes(schema: Schema, n_rows: int, seed: int = 0) -> torch.Tensor:
    """``(n_rows, columns)`` int64 category codes, each within its column's vocabulary."""
    generator = torch.Generator().manual_seed(seed)
    return torch.stack(
        [torch.randint(size, (n_rows,), generator=generator) for size in schema.cardinalities],
        dim=1,
    )


def sample(space: Space, n_trials: int = N_SAMPLES, seed: int = 0) -> list[Sample]:
    """``(trial.params, returned)`` for ``space`` run on real, randomly sampled trials."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    samples = []
    for _ in range(n_trials):
        trial = study.ask()
        returned = space(trial)
        study.tell(trial, 0.0)
        samples.append((dict(trial.params), returned))
    return samples


def param_names(space: Space) -> set[str]:
    """Every parameter name ``space`` suggests or returns over a few sampled trials."""
    return {name for params, returned in sample(space) for name in (*params, *returned)}


class PluginContract:
    """Checks every plugin kind shares: registered by an installed package, and it loads.

    Use a subclass per kind (:class:`ModelContract`, :class:`EmbeddingRuleContract`,
    :class:`OptimizerContract`, :class:`DatasetContract`) in a module pytest collects.

    Example:
        >>> from carsearch.testing import OptimizerContract
        >>> class TestAdam(OptimizerContract):
        ...     name = "adam"
    """

    kind: ClassVar[str]
    base: ClassVar[type]
    #: The plugin's entry-point name; set it in your subclass.
    name: ClassVar[str] = ""

    @pytest.fixture
    def plugin_name(self) -> str:
        if not self.name:
            pytest.fail(f"{type(self).__name__}: set `name` to the plugin's entry-point name")
        return self.name

    @pytest.fixture
    def plugin(self, plugin_name: str) -> Any:
        return plugins.load(self.kind, plugin_name)

    def test_is_registered_by_an_installed_package(self, plugin_name: str) -> None:
        info = plugins.find(self.kind, plugin_name)
        assert info.package != "?" and info.version != "?", f"{info} has no distribution"
        assert plugins.check_loads(info) is None

    def test_derives_from_the_base(self, plugin: Any) -> None:
        assert isinstance(plugin, self.base)


class SearchSpaceContract(PluginContract):
    """Checks of a plugin that suggests parameters: names, replay, JSON."""

    def run_config(self, plugin_name: str) -> RunConfig:
        """A run whose space holds this plugin next to carsearch's built-ins."""
        raise NotImplementedError

    def test_search_space_replays_under_fixed_trial(self, plugin: Any) -> None:
        for params, returned in sample(plugin.search_space):
            assert plugin.search_space(FixedTrial(params)) == returned

    def test_params_are_json_values(self, plugin: Any) -> None:
        # Bundles store the params as JSON and rebuild the model from them.
        for params, returned in sample(plugin.search_space):
            assert all(isinstance(key, str) for key in returned)
            assert json.loads(json.dumps(returned)) == returned
            assert json.loads(json.dumps(params)) == params

    def test_param_names_do_not_collide_with_the_shared_ones(self, plugin: Any) -> None:
        clash = param_names(plugin.search_space) & SHARED_PARAMS
        assert not clash, f"parameter names {sorted(clash)} are carsearch's own"

    def test_param_names_do_not_collide_with_other_plugins(
        self, plugin: Any, plugin_name: str
    ) -> None:
        mine = param_names(plugin.search_space)
        for kind, other, names in _other_spaces(self.kind, plugin_name):
            clash = mine & names
            assert not clash, f"parameter names {sorted(clash)} are also {kind} {other!r}'s"

    def test_replays_through_the_run_search_space(self, plugin_name: str) -> None:
        config, schema = self.run_config(plugin_name), tiny_schema()
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
        for _ in range(4):
            trial = study.ask()
            recipe = suggest(trial, config, schema)
            study.tell(trial, 0.0)
            assert replay(trial.params, config, schema) == recipe


class ModelContract(SearchSpaceContract):
    """A model plugin builds a module that maps ``(batch, columns)`` codes to logits."""

    kind = "models"
    base = ModelPlugin

    def run_config(self, plugin_name: str) -> RunConfig:
        return RunConfig(model=plugin_name)

    def test_builds_and_gives_batch_by_classes_logits(self, plugin: ModelPlugin) -> None:
        schema = tiny_schema()
        for _, params in sample(plugin.search_space):
            model = plugin.build(schema, params, embedding_dims=_dims(schema))
            assert isinstance(model, torch.nn.Module)
            for mode, n_rows in ((True, 16), (False, 16), (False, 1)):
                logits = model.train(mode)(random_codes(schema, n_rows))
                expected = (n_rows, len(schema.classes))
                assert logits.shape == expected, (
                    f"logits of shape {tuple(logits.shape)}, expected {expected}"
                )
                assert logits.dtype == torch.float32 and bool(logits.isfinite().all())

    def test_trains_one_step(self, plugin: ModelPlugin) -> None:
        schema = tiny_schema()
        for _, params in sample(plugin.search_space, n_trials=3):
            model = plugin.build(schema, params, embedding_dims=_dims(schema))
            before = [p.detach().clone() for p in model.parameters()]
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
            codes, labels = random_codes(schema, 32), torch.arange(32) % len(schema.classes)
            loss = torch.nn.functional.cross_entropy(model.train()(codes), labels)
            loss.backward()
            optimizer.step()
            assert bool(loss.isfinite())
            assert any(
                not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True)
            )

    def test_same_seed_same_weights_and_state_dict_round_trip(self, plugin: ModelPlugin) -> None:
        # Refits are seeded, and bundles reload weights into a freshly built model.
        schema, (_, params) = tiny_schema(), sample(plugin.search_space, n_trials=1)[0]
        models = []
        for _ in range(2):
            torch.manual_seed(0)
            models.append(plugin.build(schema, params, embedding_dims=_dims(schema)).eval())
        first, second = models
        second.load_state_dict(first.state_dict(), strict=True)
        codes = random_codes(schema, 8)
        assert torch.equal(first(codes), second(codes))


class EmbeddingRuleContract(SearchSpaceContract):
    """An embedding rule maps any cardinality to an ``int`` width of at least 1."""

    kind = "embedding_rules"
    base = EmbeddingRule

    def run_config(self, plugin_name: str) -> RunConfig:
        return RunConfig(embedding_rules=(plugin_name,))

    def test_dim_is_a_positive_int_for_cardinalities_1_to_1000(self, plugin: EmbeddingRule) -> None:
        for _, params in sample(plugin.search_space):
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
        unprefixed = sorted(
            n for n in param_names(plugin.search_space) if not n.startswith(f"{plugin_name}_")
        )
        assert not unprefixed, f"name these {plugin_name}_<param>: {unprefixed}"

    def test_builds_an_optimizer_that_steps(self, plugin: OptimizerPlugin) -> None:
        for _, params in sample(plugin.search_space):
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
        assert table.target in table.frame.columns and table.frame.shape[1] >= 2
        cells = table.frame.to_numpy().ravel()
        assert all(isinstance(cell, str) for cell in cells), "every cell must be a string"
        assert MISSING not in set(table.frame[table.target]) and len(table.schema().classes) >= 2

    def test_prepares_for_a_stratified_run(self, plugin_name: str, table: Table) -> None:
        prepared = prepare(RunConfig(dataset=plugin_name), table)
        assert len(prepared.split.train) and len(prepared.split.val) and len(prepared.split.test)

    def test_loads_the_same_data_again(self, plugin: DatasetPlugin, table: Table) -> None:
        # A resumed study checks the data's fingerprint.
        assert plugin.load().fingerprint() == table.fingerprint()


def _dims(schema: Schema) -> list[int]:
    return [max(1, min(50, (cardinality + 1) // 2)) for cardinality in schema.cardinalities]


def _other_spaces(kind: str, name: str) -> list[tuple[str, str, set[str]]]:
    """Parameter names of every other installed plugin that can share a study with this one."""
    spaces = []
    for other_kind in SPACE_KINDS:
        for info in plugins.entries(other_kind):
            exclusive = other_kind == kind == "models"  # a study searches one model
            if exclusive or (other_kind, info.name) == (kind, name):
                continue
            try:
                other = plugins.instantiate(info)
            except PluginError:
                continue  # a broken plugin fails its own checks, not this one's
            spaces.append((other_kind, info.name, param_names(other.search_space)))
    return spaces
