"""What every contract shares: the tiny schema, sampled trials, and the basic checks."""

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
from carsearch.data.schema import UNKNOWN, Column, NumericColumn, Schema
from carsearch.exceptions import PluginError
from carsearch.models.base import ModelFamily, SearchContext
from carsearch.search.space import replay, suggest

#: Trial parameters that carsearch's search space itself suggests; no plugin may use them.
SHARED_PARAMS = frozenset(
    {
        "embedding_rule",
        "numeric_encoding",
        "class_weight",
        "loss",
        "optimizer",
        "batch_size",
        "lr_scheduler",
        "model",
    }
)
#: Parameters every model plugin may suggest, meaning the same thing (see ``ModelPlugin``).
MODEL_SHARED_PARAMS = frozenset({"embedding_dropout"})
#: Plugin kinds with a search space; a study holds any number of each.
SPACE_KINDS = ("models", "embedding_rules", "optimizers", "numeric_encoders")
#: Sampled trials per check: enough to reach most branches of a define-by-run space.
N_SAMPLES = 8
#: Training rows the tiny schema stands for (it picks the batch sizes).
N_TRAIN = 200
#: The context model plugins' spaces are sampled in.
CONTEXT = SearchContext(N_TRAIN, n_categorical=4, n_numeric=2, task="classification")

Space = Callable[[BaseTrial], dict[str, Any]]
Sample = tuple[dict[str, Any], dict[str, Any]]


def tiny_schema() -> Schema:
    """Four categorical columns of 1, 2, 5 and 13 categories (plus ``<unknown>``), two
    numeric columns (one with missing values in training), three classes."""
    sizes = {"constant": 1, "pair": 2, "five": 5, "many": 13}
    columns = tuple(
        Column(name, (UNKNOWN, *(f"{name}{i}" for i in range(size))))
        for name, size in sizes.items()
    )
    numeric = (NumericColumn("width", 1.5, False), NumericColumn("age", 40.0, True))
    return Schema(columns=columns, target="label", classes=("a", "b", "c"), numeric=numeric)


def random_inputs(schema: Schema, n_rows: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(codes, numbers)`` for ``n_rows`` rows: codes within each vocabulary, some NaN."""
    generator = torch.Generator().manual_seed(seed)
    codes = torch.stack(
        [torch.randint(size, (n_rows,), generator=generator) for size in schema.cardinalities],
        dim=1,
    )
    numbers = torch.randn(n_rows, len(schema.numeric), generator=generator) * 10
    numbers[::3, -1] = float("nan")
    return codes, numbers


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


def space_of(plugin: Any) -> Space:
    """A plugin's search space as a function of the trial alone (models get :data:`CONTEXT`)."""
    if isinstance(plugin, ModelFamily):
        return lambda trial: plugin.search_space(trial, CONTEXT)
    space: Space = plugin.search_space
    return space


def param_names(space: Space) -> set[str]:
    """Every parameter name ``space`` suggests or returns over a few sampled trials."""
    return {name for params, returned in sample(space) for name in (*params, *returned)}


def assert_prefixed(space: Space, prefix: str) -> None:
    """Every parameter of ``space`` is named ``<prefix>_...``: families share one study."""
    unprefixed = sorted(n for n in param_names(space) if not n.startswith(f"{prefix}_"))
    assert not unprefixed, f"name these {prefix}_<param>: {unprefixed}"


class PluginContract:
    """Checks every plugin kind shares: registered by an installed package, and it loads.

    Use a subclass per kind (:class:`~carsearch.testing.ModelContract`, ...) in a module
    pytest collects.

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
        for params, returned in sample(space_of(plugin)):
            assert space_of(plugin)(FixedTrial(params)) == returned

    def test_params_are_json_values(self, plugin: Any) -> None:
        # Bundles store the params as JSON and rebuild the model from them.
        for params, returned in sample(space_of(plugin)):
            assert all(isinstance(key, str) for key in returned)
            assert json.loads(json.dumps(returned)) == returned
            assert json.loads(json.dumps(params)) == params

    def test_param_names_do_not_collide_with_the_shared_ones(self, plugin: Any) -> None:
        clash = param_names(space_of(plugin)) & SHARED_PARAMS
        assert not clash, f"parameter names {sorted(clash)} are carsearch's own"

    def test_param_names_do_not_collide_with_other_plugins(
        self, plugin: Any, plugin_name: str
    ) -> None:
        mine = param_names(space_of(plugin))
        for kind, other, names in _other_spaces(self.kind, plugin_name):
            clash = mine & names
            assert not clash, f"parameter names {sorted(clash)} are also {kind} {other!r}'s"

    def test_replays_through_the_run_search_space(self, plugin_name: str) -> None:
        config, schema = self.run_config(plugin_name), tiny_schema()
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
        for _ in range(4):
            trial = study.ask()
            recipe = suggest(trial, config, schema, N_TRAIN)
            study.tell(trial, 0.0)
            assert replay(trial.params, config, schema, N_TRAIN) == recipe


def _other_spaces(kind: str, name: str) -> list[tuple[str, str, set[str]]]:
    """Parameter names of every other installed plugin that can share a study with this one."""
    spaces = []
    for other_kind in SPACE_KINDS:
        for info in plugins.entries(other_kind):
            if (other_kind, info.name) == (kind, name):
                continue
            try:
                other = plugins.instantiate(info)
            except PluginError:
                continue  # a broken plugin fails its own checks, not this one's
            names = param_names(space_of(other))
            if other_kind == kind == "models":  # --model mlp,tabm: one study, both spaces
                names -= MODEL_SHARED_PARAMS
            spaces.append((other_kind, info.name, names))
    return spaces
