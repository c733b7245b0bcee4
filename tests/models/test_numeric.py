"""The built-in numeric encoders, on values whose answers are known."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pytest
import torch

from carsearch import plugins
from carsearch.models.numeric import PiecewiseLinearMap, Quantile, Standard

PLE = {"ple_n_bins": 8, "ple_d_embedding": 4, "ple_activation": False}
PERIODIC = {
    "periodic_n_frequencies": 8,
    "periodic_sigma": 0.1,
    "periodic_d_embedding": 4,
    "periodic_lite": False,
}


def test_standard_clips_at_the_training_percentiles_then_standardizes() -> None:
    values = np.arange(101, dtype=float)[:, None]  # 0..100: percentiles 1 and 99 are 1 and 99
    module = Standard().build(Standard().fit(values, {}), {})
    out = module(torch.tensor([[-1000.0], [50.0], [1000.0]]))
    assert torch.equal(out[0], module(torch.tensor([[1.0]]))[0])  # clipped to the 1st
    assert abs(float(out[1])) < 1e-6 and out[2] == -out[0]


def test_quantile_maps_the_training_median_to_zero_and_stays_monotone() -> None:
    rng = np.random.default_rng(0)
    values = rng.lognormal(3, 1, (1000, 1))
    module = Quantile().build(Quantile().fit(values, {}), {})
    probe = torch.tensor(
        np.quantile(values, [0.0, 0.25, 0.5, 0.75, 1.0])[:, None], dtype=torch.float32
    )
    out = module(probe).squeeze(1)
    assert abs(float(out[2])) < 0.03
    assert abs(float(out[1]) - NormalDist().inv_cdf(0.25)) < 0.03
    assert bool((out.diff() > 0).all())
    assert torch.equal(module(torch.tensor([[-1e12], [1e12]])), out[[0, 4]].unsqueeze(1))


def test_the_piecewise_linear_map_interpolates_between_knots() -> None:
    mapping = PiecewiseLinearMap([[0.0, 10.0], [5.0]], [[-1.0, 1.0], [0.0]])
    out = mapping(torch.tensor([[-3.0, 1.0], [2.5, 9.0], [10.0, 5.0], [20.0, -4.0]]))
    assert out.tolist() == [[-1.0, 0.0], [-0.5, 0.0], [1.0, 0.0], [1.0, 0.0]]


@pytest.mark.parametrize(
    ("name", "params", "width"), [("ple", PLE, 3 * 4), ("periodic", PERIODIC, 3 * 4)]
)
def test_the_paper_embeddings_give_one_embedding_per_column(
    name: str, params: dict[str, object], width: int
) -> None:
    encoder = plugins.instance("numeric_encoders", name)
    values = np.column_stack([np.arange(50.0), np.full(50, 3.0), np.tile([0.0, 1.0], 25)])
    module = encoder.build(encoder.fit(values, params), params)
    assert module(torch.randn(7, 3)).shape == (7, width)


def test_ple_bins_each_column_on_its_quantile_normal_scale() -> None:
    encoder = plugins.instance("numeric_encoders", "ple")
    values = np.column_stack([np.arange(200.0), np.full(200, 3.0)])
    state = encoder.fit(values, PLE)
    assert len(state["bins"][0]) == PLE["ple_n_bins"] + 1  # 8 bins: 9 edges
    assert len(state["bins"][1]) == 2  # a constant column: one bin
    assert state["bins"][0][0] == pytest.approx(NormalDist().inv_cdf(0.001), abs=1e-3)
