"""The contract of numeric-encoder plugins."""

from __future__ import annotations

import json
import warnings
from typing import Any

import numpy as np
import torch

from carsearch.config import RunConfig
from carsearch.models.numeric import NumericEncoder
from carsearch.testing.common import SearchSpaceContract, assert_prefixed, sample, space_of


def training_values(seed: int = 0) -> np.ndarray:
    """200 rows of four columns: skewed, constant, two values, and a wide normal one."""
    rng = np.random.default_rng(seed)
    return np.column_stack(
        [
            rng.lognormal(3.0, 1.0, 200),
            np.full(200, 7.0),
            rng.choice([0.0, 1.0], 200),
            rng.normal(0.0, 1000.0, 200),
        ]
    )


class NumericEncoderContract(SearchSpaceContract):
    """A numeric encoder fits JSON statistics and builds a fixed-width, finite, traceable map."""

    kind = "numeric_encoders"
    base = NumericEncoder

    def run_config(self, plugin_name: str) -> RunConfig:
        return RunConfig(numeric_encoders=(plugin_name,))

    def states(self, plugin: NumericEncoder) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        values = training_values()
        return [(params, plugin.fit(values, params)) for _, params in sample(space_of(plugin))]

    def test_param_names_carry_the_encoder_prefix(
        self, plugin: NumericEncoder, plugin_name: str
    ) -> None:
        assert_prefixed(space_of(plugin), plugin_name)

    def test_the_fitted_state_is_json_and_the_same_for_the_same_rows(
        self, plugin: NumericEncoder
    ) -> None:
        # Bundles store the state as JSON (never a pickle), and refits must agree.
        for params, state in self.states(plugin):
            assert json.loads(json.dumps(state)) == state
            assert plugin.fit(training_values(), params) == state

    def test_builds_a_fixed_width_finite_map(self, plugin: NumericEncoder) -> None:
        extremes = torch.tensor([[-1e9, 7.0, -5.0, 1e9], [1e9, -3.0, 9.0, -1e9]])
        for params, state in self.states(plugin):
            module = plugin.build(state, params)
            widths = set()
            for mode, values in (
                (True, torch.randn(16, 4)),
                (False, extremes),
                (False, torch.randn(1, 4)),
            ):
                encoded = module.train(mode)(values.float())
                assert encoded.dim() == 2 and encoded.shape[0] == len(values), encoded.shape
                assert bool(encoded.isfinite().all()), "features must stay finite"
                widths.add(encoded.shape[1])
            assert len(widths) == 1, f"the width must not depend on the batch: {widths}"

    def test_rebuilds_from_its_state_and_traces(self, plugin: NumericEncoder) -> None:
        # A bundle rebuilds the module from the state, loads the weights, and traces it.
        params, state = self.states(plugin)[0]
        torch.manual_seed(0)
        first = plugin.build(state, params).eval()
        second = plugin.build(json.loads(json.dumps(state)), params).eval()
        second.load_state_dict(first.state_dict(), strict=True)
        values = torch.from_numpy(training_values(seed=1)[:32]).float()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes on shape checks inside the module
            traced = torch.jit.trace(first, (values,), check_trace=False)
        assert torch.equal(first(values), second(values))
        assert torch.allclose(traced(values), first(values))
