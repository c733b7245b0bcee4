"""The whole network of a configuration, and the ensemble that predicts with several.

A :class:`NetworkSpec` is everything needed to build a network again (the plugins, their
parameters, the embedding widths, the numeric encoder's fitted statistics), as JSON: a trial
builds one, a refit builds several from the same spec, and a bundle stores it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from carsearch import plugins
from carsearch.data.schema import CLASSIFICATION, UNKNOWN, Schema
from carsearch.models.embedding import FusedEmbedding
from carsearch.models.inputs import Inputs, NumericInput


@dataclass(frozen=True)
class NetworkSpec:
    """How to build a network: its model plugin, parameters, widths and numeric state."""

    model: str
    params: dict[str, Any]
    embedding_dims: tuple[int, ...]
    numeric_state: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "params": self.params,
            "embedding_dims": list(self.embedding_dims),
            "numeric_state": self.numeric_state,
        }


class Network(nn.Module):
    """``(codes, numbers)`` to raw outputs: the shared input block, then the model plugin's."""

    scale: torch.Tensor

    def __init__(self, inputs: Inputs, backbone: nn.Module) -> None:
        super().__init__()
        self.inputs = inputs
        self.backbone = backbone

    def forward(self, codes: torch.Tensor, numbers: torch.Tensor) -> torch.Tensor:
        outputs: torch.Tensor = self.backbone(self.inputs(codes, numbers))
        return outputs


class Estimated(nn.Module):
    """A member an :class:`~carsearch.models.base.EstimatorPlugin` trained: its module, and
    the model as text in the family's own format (what a bundle stores; not a tensor, so
    not in the ``state_dict``)."""

    def __init__(self, model: str, text: str, module: nn.Module) -> None:
        super().__init__()
        self.model, self.text, self.module = model, text, module

    def forward(self, codes: torch.Tensor, numbers: torch.Tensor) -> torch.Tensor:
        outputs: torch.Tensor = self.module(codes, numbers)
        return outputs


def load_estimated(model: str, text: str, schema: Schema) -> Estimated:
    """The member that estimator family ``model`` saved as ``text``, for ``schema``."""
    plugin = plugins.instance("models", model)
    module = plugin.load(text, n_categorical=len(schema.columns), n_outputs=schema.n_outputs)
    return Estimated(model, text, module)


class Ensemble(nn.Module):
    """Members (:class:`Network` or :class:`Estimated` modules, both mapping ``(codes,
    numbers)`` to raw outputs), their predictions averaged: the exported model.

    ``weights`` (one per member, summing to 1) make the average weighted: a post-hoc
    ensemble of several configurations. ``forward`` returns class probabilities
    ``(rows, classes)`` for classification and values in the target's units ``(rows,)``
    for regression; a member that is itself an
    ensemble (outputs ``(rows, k, outputs)``) has its ``k`` predictions averaged first.
    """

    scale: torch.Tensor

    def __init__(
        self,
        members: Sequence[nn.Module],
        *,
        task: str = CLASSIFICATION,
        scale: tuple[float, float] = (0.0, 1.0),
        weights: list[float] | None = None,
    ) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.task = task
        self.register_buffer("scale", torch.tensor(scale, dtype=torch.float32))
        # Plain floats, not a buffer: a weighted ensemble's state_dict keeps the keys of an
        # unweighted one, and tracing writes them into the exported graph as constants.
        self.weights = None if weights is None else [float(w) for w in weights]

    def forward(self, codes: torch.Tensor, numbers: torch.Tensor) -> torch.Tensor:
        predictions = [self.predict(member(codes, numbers)) for member in self.members]
        if self.weights is None:
            return torch.stack(predictions).mean(dim=0)
        weighted = [w * p for w, p in zip(self.weights, predictions, strict=True)]
        return torch.stack(weighted).sum(dim=0)

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        """One member's raw outputs as probabilities, or as values in the target's units."""
        if self.task == CLASSIFICATION:
            probabilities = outputs.softmax(dim=-1)
            return probabilities.mean(dim=1) if probabilities.dim() == 3 else probabilities
        values = outputs.mean(dim=1) if outputs.dim() == 3 else outputs
        return values.squeeze(-1) * self.scale[1] + self.scale[0]


def build_network(spec: NetworkSpec, schema: Schema) -> Network:
    """A fresh, randomly initialised network of ``spec`` for ``schema``'s columns."""
    unknown = [column.categories[:1] == (UNKNOWN,) for column in schema.columns]
    embedding = (
        FusedEmbedding(schema.cardinalities, spec.embedding_dims, unknown)
        if schema.columns
        else None
    )
    numeric = None
    if schema.numeric:
        assert spec.numeric_state is not None, "a numeric column needs a fitted encoder"
        encoder = plugins.instance("numeric_encoders", str(spec.params["numeric_encoding"]))
        numeric = NumericInput(
            [column.median for column in schema.numeric],
            [j for j, column in enumerate(schema.numeric) if column.missing_indicator],
            encoder.build(spec.numeric_state, spec.params),
        )
    dropout = float(spec.params.get("embedding_dropout", 0.0))
    inputs = Inputs(embedding, numeric, embedding_dropout=dropout)
    model = plugins.instance("models", spec.model)
    return Network(inputs, model.build(inputs.out_features, schema.n_outputs, spec.params))


#: Training rows a numeric encoder's statistics (percentiles, bins, means) are fitted on, at
#: most: as scikit-learn's QuantileTransformer subsamples, so that a trial on a million rows
#: does not spend seconds and gigabytes sorting them.
NUMERIC_FIT_ROWS = 100_000


def fit_numeric_state(
    schema: Schema, numbers: np.ndarray, params: dict[str, Any]
) -> dict[str, Any] | None:
    """The numeric encoder's statistics of ``numbers`` (training rows, NaN median-imputed;
    at most :data:`NUMERIC_FIT_ROWS` of them)."""
    if not schema.numeric:
        return None
    if len(numbers) > NUMERIC_FIT_ROWS:  # evenly spaced rows: the statistics barely move
        numbers = numbers[np.linspace(0, len(numbers) - 1, NUMERIC_FIT_ROWS).astype(np.int64)]
    medians = np.array([column.median for column in schema.numeric], dtype=np.float64)
    values = numbers.astype(np.float64)
    missing = np.isnan(values)
    values[missing] = np.broadcast_to(medians, values.shape)[missing]
    encoder = plugins.instance("numeric_encoders", str(params["numeric_encoding"]))
    state: dict[str, Any] = encoder.fit(values, params)
    return state
