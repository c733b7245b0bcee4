"""``ple`` and ``periodic``: the numeric embeddings of Gorishniy, Rubachev and Babenko,
"On Embeddings for Numerical Features in Tabular Deep Learning" (NeurIPS 2022), from the
authors' package ``rtdl_num_embeddings``.

Both first map each column onto a standard normal through its training quantiles (as
``quantile`` does): piecewise-linear bins and periodic frequencies then work on one scale
whatever the column's units, and a value far outside the training range stays bounded.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import rtdl_num_embeddings
import torch
from optuna.trial import BaseTrial
from torch import nn

from carsearch.models.numeric import NumericEncoder, PiecewiseLinearMap, quantile_normal_state


class Flattened(nn.Module):
    """Quantile-normal map, then per-column embeddings ``(batch, columns, d)``, flattened."""

    def __init__(self, quantiles: PiecewiseLinearMap, embeddings: nn.Module) -> None:
        super().__init__()
        self.quantiles = quantiles
        self.embeddings = embeddings

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        embedded: torch.Tensor = self.embeddings(self.quantiles(values))
        return embedded.flatten(1)


class PiecewiseLinear(NumericEncoder):
    """``ple``: piecewise-linear embeddings on quantile bins (version B: linear term + PLE)."""

    def search_space(self, trial: BaseTrial) -> dict[str, Any]:
        return {
            "ple_n_bins": trial.suggest_int("ple_n_bins", 4, 64, log=True),
            "ple_d_embedding": trial.suggest_int("ple_d_embedding", 4, 32, log=True),
            "ple_activation": trial.suggest_categorical("ple_activation", [False, True]),
        }

    def fit(self, values: np.ndarray, params: dict[str, Any]) -> dict[str, Any]:
        state = quantile_normal_state(values)
        normal = _apply(state, values)
        n_bins = int(params["ple_n_bins"])
        state["bins"] = [_bins(column, n_bins) for column in normal.T]
        return state

    def build(self, state: dict[str, Any], params: dict[str, Any]) -> nn.Module:
        bins = [torch.tensor(edges, dtype=torch.float32) for edges in state["bins"]]
        with warnings.catch_warnings():
            # A column of few values gets one bin; the package warns that this is min-max
            # scaling, which is what such a column needs.
            warnings.filterwarnings("ignore", message=".*has just two bin edges")
            embeddings = rtdl_num_embeddings.PiecewiseLinearEmbeddings(
                bins,
                int(params["ple_d_embedding"]),
                activation=bool(params["ple_activation"]),
                version="B",
            )
        return Flattened(PiecewiseLinearMap(state["knots"], state["levels"]), embeddings)


class Periodic(NumericEncoder):
    """``periodic``: periodic embeddings (sin and cos of learned frequencies), then linear."""

    def search_space(self, trial: BaseTrial) -> dict[str, Any]:
        return {
            "periodic_n_frequencies": trial.suggest_int("periodic_n_frequencies", 8, 64, log=True),
            "periodic_sigma": trial.suggest_float("periodic_sigma", 0.01, 10.0, log=True),
            "periodic_d_embedding": trial.suggest_int("periodic_d_embedding", 4, 32, log=True),
            "periodic_lite": trial.suggest_categorical("periodic_lite", [False, True]),
        }

    def fit(self, values: np.ndarray, params: dict[str, Any]) -> dict[str, Any]:
        return quantile_normal_state(values)

    def build(self, state: dict[str, Any], params: dict[str, Any]) -> nn.Module:
        embeddings = rtdl_num_embeddings.PeriodicEmbeddings(
            len(state["knots"]),
            int(params["periodic_d_embedding"]),
            n_frequencies=int(params["periodic_n_frequencies"]),
            frequency_init_scale=float(params["periodic_sigma"]),
            activation=True,
            lite=bool(params["periodic_lite"]),
        )
        return Flattened(PiecewiseLinearMap(state["knots"], state["levels"]), embeddings)


def _apply(state: dict[str, Any], values: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        mapped = PiecewiseLinearMap(state["knots"], state["levels"])(torch.as_tensor(values))
    result: np.ndarray = mapped.numpy().astype(np.float64)
    return result


def _bins(column: np.ndarray, n_bins: int) -> list[float]:
    """Quantile bin edges of one column, as ``rtdl_num_embeddings.compute_bins`` makes them.

    ``compute_bins`` refuses a column with one value and ``n_bins`` of its row count or more;
    such a column gets the one bin spanning its values (at least width 1).
    """
    distinct = np.unique(column)
    if len(distinct) < 2:
        return [float(distinct[0]), float(distinct[0]) + 1.0]
    n_bins = max(2, min(n_bins, len(column) - 1, len(distinct)))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*has just two bin edges")
        edges = rtdl_num_embeddings.compute_bins(torch.as_tensor(column[:, None]), n_bins)[0]
    return [float(edge) for edge in edges]
