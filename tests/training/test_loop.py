"""The training loop."""

from __future__ import annotations

import math

import pytest
import torch

from carsearch.exceptions import TrainingError
from carsearch.models.mlp import EmbeddingMLP
from carsearch.training.loop import Tensors, evaluate, fit
from carsearch.training.schedulers import make_scheduler


def xor_data(n: int = 256) -> Tensors:
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, 2, (n, 2), generator=generator)
    return Tensors(x, x[:, 0] ^ x[:, 1])


def small_model() -> EmbeddingMLP:
    return EmbeddingMLP(
        [2, 2], [2, 2], [16], 2, dropout=0.0, embedding_dropout=0.0, batch_norm=True
    )


def test_fit_learns_xor_and_keeps_the_best_epoch() -> None:
    model = small_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    data = xor_data()
    seen: list[int] = []
    result = fit(
        model,
        optimizer,
        data,
        data,
        batch_size=64,
        max_epochs=30,
        seed=0,
        on_epoch=lambda epoch, loss, scores: seen.append(epoch),
    )
    assert seen == [epoch for epoch, _, _ in result.history] == list(range(1, len(seen) + 1))
    assert len(seen) >= result.best_epoch >= 1
    assert result.best_scores is not None and result.best_scores.accuracy == 1.0
    best_loss = min(scores.log_loss for _, _, scores in result.history)
    assert math.isclose(evaluate(model, data).log_loss, best_loss, rel_tol=1e-5)


def test_early_stopping_ends_after_patience() -> None:
    model = small_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # never improves
    data = xor_data()
    result = fit(
        model,
        optimizer,
        data,
        data,
        batch_size=64,
        max_epochs=50,
        seed=0,
        patience=3,
        metric="accuracy",
    )
    assert result.best_epoch == 1
    assert len(result.history) == 4


def test_nan_loss_ends_training_with_a_reason() -> None:
    model = small_model()
    with torch.no_grad():
        model.layers[0].weight.fill_(float("nan"))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(TrainingError, match="training loss became nan at epoch 1"):
        fit(model, optimizer, xor_data(), None, batch_size=64, max_epochs=3, seed=0)


def test_same_seed_same_weights() -> None:
    states = []
    for _ in range(2):
        torch.manual_seed(1)
        model = small_model()
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        fit(model, optimizer, xor_data(), None, batch_size=32, max_epochs=3, seed=7)
        states.append(model.state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_textbook_exponential_decay() -> None:
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    scheduler = make_scheduler("exponential", optimizer, 10)
    assert scheduler is not None
    for _ in range(3):
        optimizer.step()
        scheduler.step()
    assert math.isclose(optimizer.param_groups[0]["lr"], 0.95**3)
    assert make_scheduler("none", optimizer, 10) is None
