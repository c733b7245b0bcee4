"""K networks of the ``mlp`` family as one module: stacked weights, one batched matmul a layer.

Members must share a shape (the same input block, hidden widths, batch norm on or off); each
keeps its own weights, dropout rates, dropout masks (drawn from its own generator, so member
``k``'s masks are the ones a lone network seeded alike draws) and BatchNorm statistics.
Members of different shapes are not padded: the caller groups them by shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from carsearch.exceptions import TrainingError
from carsearch.models.mlp import MLP
from carsearch.models.network import Network


class BatchedMLP(nn.Module):
    """The stacked copy of ``members`` (lone :class:`Network` objects with an :class:`MLP`).

    ``forward`` maps codes ``(K, batch, columns)`` and numbers ``(K, batch, columns)`` to
    outputs ``(K, batch, n_outputs)``; member ``k`` sees only its own rows and weights.

    Example:
        >>> from carsearch.models.embedding import FusedEmbedding
        >>> from carsearch.models.inputs import Inputs
        >>> lone = [Network(Inputs(FusedEmbedding([3], [2]), None),
        ...                 MLP(2, [4], 3, dropout=0.0, batch_norm=True)) for _ in range(2)]
        >>> BatchedMLP(lone)(torch.zeros(2, 5, 1, dtype=torch.long), torch.zeros(2, 5, 0)).shape
        torch.Size([2, 5, 3])
    """

    mask: torch.Tensor
    offsets: torch.Tensor
    numeric: nn.Module | None

    def __init__(self, members: Sequence[Network]) -> None:
        super().__init__()
        shapes = {shape_of(member) for member in members}
        if len(shapes) != 1:
            raise TrainingError(f"batched members must share one shape, got {sorted(shapes)}")
        first = members[0]
        embedding = first.inputs.embedding
        self.numeric = first.inputs.numeric  # buffers only: equal for equal encoder states
        self.table: nn.Parameter | None = None
        if embedding is not None:
            self.table = nn.Parameter(_stack([m.inputs.embedding.weight for m in members]))  # type: ignore[union-attr]
            self.register_buffer("mask", embedding.mask.clone())
            self.register_buffer("offsets", embedding.offsets.clone())
        self.embedding_dropout = [float(m.inputs.embedding_dropout.p) for m in members]
        mlps = [_mlp(member) for member in members]
        linears = [_layers(mlp, nn.Linear) for mlp in mlps]
        norms = [_layers(mlp, nn.BatchNorm1d) for mlp in mlps]
        self.weights = nn.ParameterList(
            _stack([lin[i].weight.t() for lin in linears]) for i in range(len(linears[0]))
        )
        self.biases = nn.ParameterList(
            _stack([lin[i].bias.unsqueeze(0) for lin in linears]) for i in range(len(linears[0]))
        )
        self.norms = [_stacked_norm([bn[i] for bn in norms]) for i in range(len(norms[0]))]
        for i, norm in enumerate(self.norms):
            self.add_module(f"norm{i}", norm)
        self.dropout = [_dropout_rate(mlp) for mlp in mlps]
        self.generators: list[torch.Generator | None] = [None] * len(members)

    @property
    def n_members(self) -> int:
        return len(self.dropout)

    def forward(self, codes: torch.Tensor, numbers: torch.Tensor) -> torch.Tensor:
        features = self._inputs(codes, numbers)
        n_hidden = len(self.weights) - 1
        for i in range(n_hidden):
            features = torch.relu(torch.baddbmm(self.biases[i], features, self.weights[i]))
            if self.norms:
                features = _batch_norm(self.norms[i], features, self.training)
            features = self._drop(features, self.dropout)
        return torch.baddbmm(self.biases[n_hidden], features, self.weights[n_hidden])

    def keep(self, members: Sequence[int]) -> None:
        """Keep only ``members`` (indices, in order): the others leave the batch."""
        index = torch.tensor(list(members), dtype=torch.long)
        if self.table is not None:
            self.table = nn.Parameter(self.table.detach()[index])
        for params in (self.weights, self.biases):
            for i, param in enumerate(params):
                params[i] = nn.Parameter(param.detach()[index])
        for norm in self.norms:
            norm.keep(index)
        self.embedding_dropout = [self.embedding_dropout[k] for k in members]
        self.dropout = [self.dropout[k] for k in members]
        self.generators = [self.generators[k] for k in members]

    def _inputs(self, codes: torch.Tensor, numbers: torch.Tensor) -> torch.Tensor:
        parts: list[torch.Tensor] = []
        if self.table is not None:
            k, rows, width = self.table.shape
            shift = torch.arange(k, device=codes.device).mul_(rows).view(k, 1, 1)
            table = (self.table * self.mask).reshape(k * rows, width)
            embedded = nn.functional.embedding(codes + self.offsets + shift, table).sum(dim=2)
            parts.append(self._drop(embedded, self.embedding_dropout))
        if self.numeric is not None:
            k, batch, n_columns = numbers.shape
            encoded = self.numeric(numbers.reshape(k * batch, n_columns))
            parts.append(encoded.reshape(k, batch, -1))
        if not parts:
            raise TrainingError("a batched network needs categorical or numeric columns")
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=2)

    def _drop(self, features: torch.Tensor, rates: Sequence[float]) -> torch.Tensor:
        """Each member's dropout, its mask drawn as ``nn.Dropout`` draws it on the CPU."""
        if not self.training or not any(rates):
            return features
        noise = torch.ones_like(features)
        for k, rate in enumerate(rates):
            if rate == 1.0:
                noise[k] = 0.0
            elif rate > 0.0:
                noise[k].bernoulli_(1.0 - rate, generator=self.generators[k]).div_(1.0 - rate)
        return features * noise


class StackedNorm(nn.Module):
    """K BatchNorm1d layers of one width, run as one over ``K * width`` channels."""

    running_mean: torch.Tensor
    running_var: torch.Tensor

    def __init__(
        self,
        weight: torch.Tensor,
        bias: torch.Tensor,
        mean: torch.Tensor,
        var: torch.Tensor,
        momentum: float,
        eps: float,
    ) -> None:
        super().__init__()
        self.weight, self.bias = nn.Parameter(weight), nn.Parameter(bias)
        self.register_buffer("running_mean", mean)
        self.register_buffer("running_var", var)
        self.momentum, self.eps = momentum, eps

    def keep(self, index: torch.Tensor) -> None:
        self.weight = nn.Parameter(self.weight.detach()[index])
        self.bias = nn.Parameter(self.bias.detach()[index])
        self.running_mean = self.running_mean[index]
        self.running_var = self.running_var[index]


def _batch_norm(norm: StackedNorm, features: torch.Tensor, training: bool) -> torch.Tensor:
    """Per-member batch statistics: members become channels of one ``batch_norm`` call."""
    k, batch, width = features.shape
    flat = features.transpose(0, 1).reshape(batch, k * width)
    out = nn.functional.batch_norm(
        flat,
        norm.running_mean.view(-1),
        norm.running_var.view(-1),
        norm.weight.reshape(-1),
        norm.bias.reshape(-1),
        training,
        norm.momentum,
        norm.eps,
    )
    return out.reshape(batch, k, width).transpose(0, 1)


def shape_of(network: Network) -> tuple[object, ...]:
    """What members of one batch must share: input widths, hidden widths, batch norm."""
    mlp = _mlp(network)
    embedding = network.inputs.embedding
    widths = tuple(
        (layer.in_features, layer.out_features)
        for layer in mlp.layers
        if isinstance(layer, nn.Linear)
    )
    has_norm = any(isinstance(layer, nn.BatchNorm1d) for layer in mlp.layers)
    table = None if embedding is None else tuple(embedding.mask.shape)
    return (table, network.inputs.numeric is not None, widths, has_norm)


def _mlp(network: Network) -> MLP:
    if not isinstance(network.backbone, MLP):
        name = type(network.backbone).__name__
        raise TrainingError(f"only the mlp family trains batched, not {name}")
    return network.backbone


def _layers(mlp: MLP, kind: type[nn.Module]) -> list[Any]:
    return [layer for layer in mlp.layers if isinstance(layer, kind)]


def _dropout_rate(mlp: MLP) -> float:
    rates = {float(layer.p) for layer in mlp.layers if isinstance(layer, nn.Dropout)}
    return rates.pop() if rates else 0.0


def _stack(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.stack([tensor.detach() for tensor in tensors]).contiguous()


def _stacked_norm(norms: Sequence[nn.BatchNorm1d]) -> StackedNorm:
    first = norms[0]
    return StackedNorm(
        _stack([norm.weight for norm in norms]),
        _stack([norm.bias for norm in norms]),
        _stack([norm.running_mean for norm in norms if norm.running_mean is not None]),
        _stack([norm.running_var for norm in norms if norm.running_var is not None]),
        momentum=float(first.momentum or 0.1),
        eps=first.eps,
    )
