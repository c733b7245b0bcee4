"""The contract of estimator families (:class:`~carsearch.models.base.EstimatorPlugin`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna
import pytest
import torch
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import FixedTrial

from carsearch.config import RunConfig
from carsearch.models.base import EstimatorPlugin, Rows
from carsearch.testing.common import (
    CONTEXT,
    SearchSpaceContract,
    random_inputs,
    sample,
    space_of,
    tiny_schema,
)

#: Rows the checks train and validate on, and the epochs they train.
N_TRAIN_ROWS, N_VAL_ROWS, N_EPOCHS = 200, 50, 3
#: Outputs of a classification (the tiny schema's classes) and of a regression.
TASKS = {"classification": 3, "regression": 1}


def tiny_rows(n_rows: int, n_outputs: int, seed: int) -> Rows:
    """Rows of the tiny schema whose target depends on their values (so trees split)."""
    codes, numbers = random_inputs(tiny_schema(), n_rows, seed)
    signal = (codes[:, 3] + torch.nan_to_num(numbers[:, 0])).double().numpy()
    if n_outputs == 1:
        targets = (signal - signal.mean()) / signal.std()
    else:  # three classes of equal size
        targets = np.digitize(signal, np.quantile(signal, [1 / 3, 2 / 3]))
    return Rows(codes.numpy(), numbers.numpy(), targets)


class Watch:
    """An ``on_epoch`` that records what it is given, and stops or prunes when told."""

    def __init__(self, stop_at: int | None = None, prune_at: int | None = None) -> None:
        self.seen: list[tuple[int, np.ndarray]] = []
        self.stop_at, self.prune_at = stop_at, prune_at

    def __call__(self, epoch: int, raw: np.ndarray) -> bool:
        self.seen.append((epoch, raw.copy()))
        if epoch == self.prune_at:
            raise optuna.TrialPruned(f"pruned at epoch {epoch}")
        return epoch == self.stop_at


def outside(value: Any, distribution: BaseDistribution) -> bool:
    """Whether ``value`` lies outside ``distribution`` (a ``FixedTrial`` only warns)."""
    if isinstance(distribution, CategoricalDistribution):
        return value not in distribution.choices
    assert isinstance(distribution, (IntDistribution, FloatDistribution))
    return not distribution.low <= value <= distribution.high


class EstimatorContract(SearchSpaceContract):
    """An estimator family trains on rows, reports each epoch's raw validation outputs,
    stops and prunes when told, and saves a text its :meth:`load` turns into a module that
    gives those same outputs and traces to TorchScript.

    Example:
        >>> from carsearch.testing import EstimatorContract
        >>> class TestLightGBM(EstimatorContract):
        ...     name = "lightgbm"
    """

    kind = "models"
    base = EstimatorPlugin

    def run_config(self, plugin_name: str) -> RunConfig:
        return RunConfig(model=plugin_name)

    def fitted(
        self, plugin: EstimatorPlugin, n_outputs: int, watch: Watch | None = None, seed: int = 0
    ) -> tuple[str, Rows]:
        params = sample(space_of(plugin), n_trials=1)[0][1]
        train, val = tiny_rows(N_TRAIN_ROWS, n_outputs, 0), tiny_rows(N_VAL_ROWS, n_outputs, 1)
        text = plugin.fit(
            train, val, params, n_outputs=n_outputs, n_epochs=N_EPOCHS, seed=seed,
            on_epoch=watch or Watch(),
        )  # fmt: skip
        return text, val

    def outputs(self, plugin: EstimatorPlugin, text: str, rows: Rows, n_outputs: int) -> np.ndarray:
        module = plugin.load(text, n_categorical=rows.codes.shape[1], n_outputs=n_outputs)
        with torch.inference_mode():
            out = module.eval()(torch.from_numpy(rows.codes), torch.from_numpy(rows.numbers))
        assert out.dtype == torch.float32 and tuple(out.shape) == (len(rows), n_outputs)
        result: np.ndarray = out.numpy()
        return result

    @pytest.mark.parametrize("task", list(TASKS))
    def test_each_epoch_reports_the_outputs_its_loaded_model_gives(
        self, plugin: EstimatorPlugin, task: str
    ) -> None:
        watch = Watch()
        text, val = self.fitted(plugin, TASKS[task], watch)
        assert [epoch for epoch, _ in watch.seen] == list(range(1, N_EPOCHS + 1))
        last = watch.seen[-1][1]
        assert last.shape == (N_VAL_ROWS, TASKS[task]) and np.isfinite(last).all()
        loaded = self.outputs(plugin, text, val, TASKS[task])
        np.testing.assert_allclose(loaded, last, atol=1e-4)

    def test_cut_keeps_the_first_epochs(self, plugin: EstimatorPlugin) -> None:
        watch = Watch()
        text, val = self.fitted(plugin, 3, watch)
        first = self.outputs(plugin, plugin.cut(text, 1), val, 3)
        np.testing.assert_allclose(first, watch.seen[0][1], atol=1e-4)

    def test_stops_when_told_and_a_prune_raises_out_of_fit(self, plugin: EstimatorPlugin) -> None:
        watch = Watch(stop_at=2)
        self.fitted(plugin, 3, watch)
        assert [epoch for epoch, _ in watch.seen] == [1, 2]
        with pytest.raises(optuna.TrialPruned):
            self.fitted(plugin, 3, Watch(prune_at=1))

    def test_same_seed_same_model(self, plugin: EstimatorPlugin) -> None:
        (first, val), (second, _) = self.fitted(plugin, 3), self.fitted(plugin, 3)
        np.testing.assert_array_equal(
            self.outputs(plugin, first, val, 3), self.outputs(plugin, second, val, 3)
        )

    def test_loaded_module_traces_and_round_trips_its_state_dict(
        self, plugin: EstimatorPlugin
    ) -> None:
        text, val = self.fitted(plugin, 3)
        n_categorical = val.codes.shape[1]
        first, second = (plugin.load(text, n_categorical=n_categorical, n_outputs=3) for _ in "ab")
        second.load_state_dict(first.state_dict(), strict=True)
        codes, numbers = torch.from_numpy(val.codes), torch.from_numpy(val.numbers)
        traced = torch.jit.trace(first.eval(), (codes[:8], numbers[:8]), check_trace=False)
        with torch.inference_mode():
            want = second.eval()(codes[:3], numbers[:3])
            assert torch.allclose(traced(codes[:3], numbers[:3]), want, atol=1e-5)

    def test_first_params_are_a_point_of_the_space(self, plugin: EstimatorPlugin) -> None:
        first = plugin.first_params(CONTEXT)
        if first is None:
            return
        trial = FixedTrial(first)
        returned = space_of(plugin)(trial)
        assert returned == {name: first[name] for name in trial.params}
        wrong = [n for n, d in trial.distributions.items() if outside(trial.params[n], d)]
        assert not wrong, f"first params outside the space: {wrong}"

    def test_a_text_of_something_else_is_refused(self, plugin: EstimatorPlugin) -> None:
        with pytest.raises(ValueError):
            plugin.load("not a model", n_categorical=4, n_outputs=3)
