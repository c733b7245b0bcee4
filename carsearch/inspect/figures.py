"""The report's figures of a regression: the target's histogram, predictions against truth,
and the residuals. (Classes get the pie and the confusion matrix in :mod:`.report`.)"""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go


def target_histogram(histogram: dict[str, list[float]], target: str) -> go.Figure:
    """The target's distribution, from the histogram a study records of its data."""
    edges, counts = np.asarray(histogram["edges"]), np.asarray(histogram["counts"])
    figure = go.Figure(
        go.Bar(x=(edges[:-1] + edges[1:]) / 2, y=counts, width=np.diff(edges), name=target)
    )
    figure.update_layout(xaxis_title=target, yaxis_title="rows", bargap=0.02)
    return figure


def predicted_against_true(points: list[list[float]], target: str) -> go.Figure:
    """Each test row's prediction against its true value, on the diagonal if perfect."""
    truth, predicted = np.asarray(points, dtype=float).T
    low, high = float(min(truth.min(), predicted.min())), float(max(truth.max(), predicted.max()))
    figure = go.Figure(
        [
            go.Scatter(x=truth, y=predicted, mode="markers", marker={"size": 5, "opacity": 0.6}),
            go.Scatter(x=[low, high], y=[low, high], mode="lines", line={"dash": "dash"}),
        ]
    )
    figure.update_layout(
        xaxis_title=f"true {target}", yaxis_title=f"predicted {target}", showlegend=False
    )
    return figure


def residuals(points: list[list[float]], target: str) -> go.Figure:
    """The distribution of prediction minus truth over the test rows."""
    truth, predicted = np.asarray(points, dtype=float).T
    figure = go.Figure(go.Histogram(x=predicted - truth, nbinsx=40))
    figure.update_layout(xaxis_title=f"predicted - true {target}", yaxis_title="test rows")
    return figure


def regression_scores(test: dict[str, Any]) -> str:
    return f"RMSE {test['rmse']:.6g}, MAE {test['mae']:.6g}, R2 {test['r2']:.4f}"


def ensemble_scores(ensemble: dict[str, Any]) -> go.Figure:
    """The ensemble's validation score after each addition, the chosen size marked."""
    scores = ensemble["val_scores"]
    sizes = list(range(1, len(scores) + 1))
    figure = go.Figure(
        [
            go.Scatter(x=sizes, y=scores, mode="lines+markers", name="validation"),
            go.Scatter(
                x=[ensemble["size"]],
                y=[ensemble["val_score"]],
                mode="markers",
                marker={"size": 12, "symbol": "star"},
                name="chosen",
            ),
        ]
    )
    figure.update_layout(
        xaxis_title="ensemble size (additions)", yaxis_title=f"validation {ensemble['metric']}"
    )
    return figure
