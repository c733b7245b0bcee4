"""The training loop."""

from __future__ import annotations

import math

import pytest
import torch

from carsearch.exceptions import TrainingError
from carsearch.models.embedding import FusedEmbedding
from carsearch.models.inputs import Inputs
from carsearch.models.mlp import MLP
from carsearch.models.network import Network
from carsearch.training.loop import Tensors, evaluate, fit
from carsearch.training.schedulers import make_scheduler
from carsearch.training.tasks import Classification

TASK = Classification()


def xor_data(n: int = 256) -> Tensors:
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, 2, (n, 2), generator=generator)
    return Tensors(x, torch.zeros(n, 0), x[:, 0] ^ x[:, 1])


def small_model(*, batch_norm: bool = True) -> Network:
    inputs = Inputs(FusedEmbedding([2, 2], [2, 2]), None)
    return Network(inputs, MLP(4, [16], 2, dropout=0.0, batch_norm=batch_norm))


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
        task=TASK,
        batch_size=64,
        max_epochs=30,
        seed=0,
        on_epoch=lambda epoch, loss, scores: seen.append(epoch),
    )
    assert seen == [epoch for epoch, _, _ in result.history] == list(range(1, len(seen) + 1))
    assert len(seen) >= result.best_epoch >= 1
    assert result.best_scores is not None and result.best_scores["accuracy"] == 1.0
    best_loss = min(scores["log_loss"] for _, _, scores in result.history)
    assert math.isclose(evaluate(model, data, TASK)["log_loss"], best_loss, rel_tol=1e-5)


def test_early_stopping_ends_after_patience() -> None:
    model = small_model(batch_norm=False)  # batch statistics would move without learning
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # never improves
    data = xor_data()
    result = fit(
        model,
        optimizer,
        data,
        data,
        task=TASK,
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
        model.backbone.layers[0].weight.fill_(float("nan"))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(TrainingError, match="training loss became nan at epoch 1"):
        fit(model, optimizer, xor_data(), None, task=TASK, batch_size=64, max_epochs=3, seed=0)


def test_same_seed_same_weights() -> None:
    states = []
    for _ in range(2):
        torch.manual_seed(1)
        model = small_model()
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        fit(model, optimizer, xor_data(), None, task=TASK, batch_size=32, max_epochs=3, seed=7)
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


def test_a_k_member_output_trains_each_member_on_every_row() -> None:
    outputs = torch.tensor([[[2.0, 0.0], [0.0, 2.0]]])  # one row, two members
    loss = TASK.loss(outputs, torch.tensor([0]))
    per_member = torch.nn.functional.cross_entropy(outputs[0], torch.tensor([0, 0]))
    assert torch.isclose(loss, per_member)
    assert torch.allclose(TASK.predict(outputs), torch.tensor([[0.5, 0.5]]))


def test_balanced_class_weights_weigh_rare_classes_up() -> None:
    task = Classification(torch.tensor([0.5, 5.0]))
    outputs, targets = torch.zeros(2, 2), torch.tensor([0, 1])
    assert torch.isclose(task.loss(outputs, targets), TASK.loss(outputs, targets))
    wrong_on_rare = torch.tensor([[5.0, -5.0], [5.0, -5.0]])
    assert task.loss(wrong_on_rare, targets) > TASK.loss(wrong_on_rare, targets)
