"""Batched training: each member trains exactly as it would alone."""

from __future__ import annotations

from typing import Any

import optuna
import pytest
import torch

from carsearch import RunConfig
from carsearch.data.prepare import Prepared, prepare
from carsearch.exceptions import TrainingError
from carsearch.models.batched import BatchedMLP
from carsearch.models.embedding import FusedEmbedding
from carsearch.models.inputs import Inputs
from carsearch.models.mlp import MLP
from carsearch.models.network import Network, build_network
from carsearch.search.space import suggest
from carsearch.training.batched import Member, fit_batched, group_key
from carsearch.training.device import seed_everything
from carsearch.training.loop import Tensors, fit
from carsearch.training.recipe import Recipe
from tests.helpers import tiny_config

EPOCHS = 3
BASE: dict[str, Any] = {
    "n_layers": 2,
    "n_units_l0": 24,
    "n_units_l1": 12,
    "dropout": 0.2,
    "embedding_dropout": 0.1,
    "batch_norm": True,
    "optimizer": "adam",
    "adam_lr": 3e-3,
    "adam_weight_decay": 1e-4,
    "batch_size": 128,
    "lr_scheduler": "none",
}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunConfig, Prepared]:
    config = tiny_config(tmp_path_factory.mktemp("batched"))
    return config, prepare(config)


@pytest.fixture(scope="module")
def prepared(setup: tuple[RunConfig, Prepared]) -> Prepared:
    return setup[1]


def recipe_of(setup: tuple[RunConfig, Prepared], **changes: Any) -> Recipe:
    """The recipe of BASE with ``changes``, through the search space's own code."""
    config, prepared = setup
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    params = {k: v for k, v in {**BASE, **changes}.items() if v is not None}
    study.enqueue_trial(params)
    trial = study.ask()
    recipe = suggest(trial, config, prepared.search.schema, len(prepared.split.train))
    assert all(trial.params[k] == v for k, v in params.items()), "enqueued params not used"
    return recipe


def tensors(prepared: Prepared) -> tuple[Tensors, Tensors]:
    device = torch.device("cpu")
    encoded = prepared.search
    return (
        Tensors.select(encoded, prepared.split.train, device),
        Tensors.select(encoded, prepared.split.val, device),
    )


def lone_losses(prepared: Prepared, recipe: Recipe, seed: int) -> list[tuple[float, float]]:
    """Per-epoch (training loss, validation log loss) of a lone fit, as a trial trains."""
    encoded, rows, device = prepared.search, prepared.split.train, torch.device("cpu")
    seed_everything(seed)
    task = recipe.task(encoded, rows, device)
    model = build_network(recipe.spec(encoded, rows), encoded.schema)
    optimizer = recipe.build_optimizer(model)
    train, val = tensors(prepared)
    result = fit(
        model,
        optimizer,
        train,
        val,
        task=task,
        batch_size=recipe.batch_size,
        max_epochs=EPOCHS,
        seed=seed,
        scheduler=recipe.build_scheduler(optimizer, EPOCHS),
    )
    return [(loss, scores["log_loss"]) for _, loss, scores in result.history]


def batched_losses(
    prepared: Prepared, recipes: list[Recipe], seeds: list[int]
) -> list[list[tuple[float, float]]]:
    members = [Member(recipe, seed) for recipe, seed in zip(recipes, seeds, strict=True)]
    train, val = tensors(prepared)
    fit_batched(
        members,
        prepared.search,
        prepared.split.train,
        train,
        val,
        device=torch.device("cpu"),
        max_epochs=EPOCHS,
    )
    return [[(loss, s["log_loss"]) for _, loss, s in m.result.history] for m in members]


def assert_close(got: list[tuple[float, float]], want: list[tuple[float, float]]) -> None:
    assert len(got) == len(want) == EPOCHS
    train_got, val_got = zip(*got, strict=True)
    train_want, val_want = zip(*want, strict=True)
    assert train_got == pytest.approx(train_want, rel=1e-5, abs=1e-6)
    # A linear bias before BatchNorm has a zero gradient up to rounding, which Adam and
    # RMSprop scale to full-size steps: training is blind to it, but the running mean (and so
    # the validation loss) carries it, as rounding noise of about 1e-4 after 3 epochs.
    assert val_got == pytest.approx(val_want, rel=1e-3)


def flat(pairs: list[tuple[float, float]]) -> list[float]:
    return [value for pair in pairs for value in pair]


def test_one_member_trains_as_a_lone_fit(setup: tuple[RunConfig, Prepared]) -> None:
    recipe = recipe_of(setup)
    [batched] = batched_losses(setup[1], [recipe], [7])
    assert_close(batched, lone_losses(setup[1], recipe, 7))


@pytest.mark.parametrize(
    ("optimizer", "scheduler"),
    [("adam", "cosine"), ("sgd", "exponential"), ("rmsprop", "none")],
)
def test_three_members_of_different_rates_each_train_as_alone(
    setup: tuple[RunConfig, Prepared], optimizer: str, scheduler: str
) -> None:
    per_member = {
        "adam": [{"adam_lr": 1e-3, "adam_weight_decay": 1e-6}, {"adam_lr": 1e-2}, {}],
        "sgd": [
            {"sgd_lr": 0.05, "sgd_momentum": 0.9, "sgd_nesterov": True},
            {"sgd_lr": 0.2, "sgd_momentum": 0.0, "sgd_nesterov": False},
            {"sgd_lr": 0.01, "sgd_momentum": 0.5, "sgd_nesterov": False},
        ],
        "rmsprop": [
            {"rmsprop_lr": 1e-3, "rmsprop_alpha": 0.9, "rmsprop_momentum": 0.5},
            {"rmsprop_lr": 5e-3, "rmsprop_alpha": 0.99, "rmsprop_momentum": 0.0},
            {"rmsprop_lr": 2e-4, "rmsprop_alpha": 0.8, "rmsprop_momentum": 0.9},
        ],
    }[optimizer]
    base = {"optimizer": optimizer, "lr_scheduler": scheduler}
    if optimizer != "adam":
        base.update(adam_lr=None, adam_weight_decay=None)
    dropouts = [(0.0, 0.0), (0.3, 0.2), (0.1, 0.4)]
    recipes = [
        recipe_of(setup, **base, **extra, dropout=d, embedding_dropout=e)
        for extra, (d, e) in zip(per_member, dropouts, strict=True)
    ]
    assert len({group_key(recipe) for recipe in recipes}) == 1
    seeds = [1, 2, 3]
    batched = batched_losses(setup[1], recipes, seeds)
    for recipe, seed, got in zip(recipes, seeds, batched, strict=True):
        assert_close(got, lone_losses(setup[1], recipe, seed))
    assert batched[0] != batched[1]  # the members really differ


def test_a_member_does_not_depend_on_its_neighbours(setup: tuple[RunConfig, Prepared]) -> None:
    first = [recipe_of(setup), recipe_of(setup, adam_lr=1e-3)]
    second = [recipe_of(setup), recipe_of(setup, adam_lr=2e-2, dropout=0.4)]
    one = batched_losses(setup[1], first, [5, 6])
    two = batched_losses(setup[1], second, [5, 6])
    assert flat(one[0]) == pytest.approx(flat(two[0]), rel=1e-6, abs=1e-7)
    assert one[1] != two[1]


def test_a_pruned_member_leaves_and_the_others_go_on_as_alone(
    setup: tuple[RunConfig, Prepared],
) -> None:
    recipes = [recipe_of(setup), recipe_of(setup, adam_lr=1e-2), recipe_of(setup, dropout=0.0)]

    def prune_at_two(epoch: int, loss: float, scores: dict[str, float]) -> None:
        if epoch == 2:
            raise optuna.TrialPruned("pruned at epoch 2")

    members = [Member(recipes[0], 1), Member(recipes[1], 2, prune_at_two), Member(recipes[2], 3)]
    train, val = tensors(setup[1])
    fit_batched(
        members,
        setup[1].search,
        setup[1].split.train,
        train,
        val,
        device=torch.device("cpu"),
        max_epochs=EPOCHS,
    )
    assert isinstance(members[1].error, optuna.TrialPruned)
    assert [epoch for epoch, _, _ in members[1].result.history] == [1, 2]
    for member in (members[0], members[2]):
        assert member.error is None
        got = [(loss, s["log_loss"]) for _, loss, s in member.result.history]
        assert_close(got, lone_losses(setup[1], member.recipe, member.seed))


def test_a_linear_member_without_hidden_layers_matches_its_lone_network() -> None:
    torch.manual_seed(0)
    lone = [
        Network(
            Inputs(FusedEmbedding([3, 4], [2, 3]), None),
            MLP(5, [], 2, dropout=0.0, batch_norm=False),
        )
        for _ in range(3)
    ]
    batched = BatchedMLP(lone).eval()
    codes = torch.randint(0, 3, (6, 2))
    want = torch.stack([network.eval()(codes, torch.zeros(6, 0)) for network in lone])
    got = batched(codes.expand(3, -1, -1), torch.zeros(3, 6, 0))
    torch.testing.assert_close(got, want)


def test_members_of_different_shapes_are_refused() -> None:
    inputs = [Inputs(FusedEmbedding([3], [2]), None) for _ in range(2)]
    networks = [
        Network(inputs[0], MLP(2, [4], 2, dropout=0.0, batch_norm=False)),
        Network(inputs[1], MLP(2, [8], 2, dropout=0.0, batch_norm=False)),
    ]
    with pytest.raises(TrainingError, match="share one shape"):
        BatchedMLP(networks)
