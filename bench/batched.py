"""Batched training (K configurations as one model) against K lone fits, on the car data.

For each shape (hidden widths, batch size) and K, it times one epoch (training, then the
validation scores, as a trial runs it) of K lone networks one after another and of the same K
members as one :class:`~carsearch.models.batched.BatchedMLP`, alternating the two, and prints
the median of the repeats: time per epoch for all K, per member, and the speed-up. Members
differ in learning rate and dropout (one shape group). It also times one training step of the
``baddbmm`` module against ``torch.func.stack_module_state`` + ``vmap`` over K lone MLPs.

Run ``python bench/batched.py`` (one torch thread by default). On a shared machine the
numbers move from run to run: the note printed with them says so.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import optuna
import torch

from carsearch import RunConfig
from carsearch.data.prepare import Prepared, prepare
from carsearch.models.network import build_network
from carsearch.search.space import suggest
from carsearch.training.batched import (
    Member,
    build_batch,
    evaluate_batched,
    member_losses,
    train_epoch_batched,
)
from carsearch.training.device import seed_everything, set_threads
from carsearch.training.loop import Tensors, evaluate, train_epoch
from carsearch.training.recipe import Recipe
from carsearch.training.stacked import StackedOptimizer

#: (hidden widths, batch size): the car search's range of shapes (its batch sizes for 1,105
#: training rows are 128, 256 and 512).
SHAPES: tuple[tuple[tuple[int, ...], int], ...] = (
    ((32,), 128),
    ((128, 128), 256),
    ((64, 64, 64), 128),
    ((512,), 128),
    ((16, 16, 16, 16), 512),
)
CPU = torch.device("cpu")


def recipes(prepared: Prepared, hidden: tuple[int, ...], batch: int, k: int) -> list[Recipe]:
    """``k`` recipes of one shape, differing in learning rate and dropout."""
    config = RunConfig()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    out: list[Recipe] = []
    shared: dict[str, Any] = {"n_layers": len(hidden), "batch_size": batch}
    shared.update({f"n_units_l{j}": width for j, width in enumerate(hidden)})
    shared.update(optimizer="adam", batch_norm=True, lr_scheduler="none")
    for i in range(k):
        changes = {"adam_lr": 1e-3 * (1 + i % 7), "dropout": 0.05 * (i % 5)}
        study.enqueue_trial({**shared, **changes})
        trial = study.ask()
        out.append(suggest(trial, config, prepared.search.schema, len(prepared.split.train)))
        shared = {**trial.params, **shared}  # the first member's other choices for all
    return out


def lone_epoch(prepared: Prepared, members: list[Recipe]) -> Callable[[], None]:
    """One epoch of each member alone, one after another."""
    encoded, rows = prepared.search, prepared.split.train
    train = Tensors.select(encoded, rows, CPU)
    val = Tensors.select(encoded, prepared.split.val, CPU)
    fits = []
    for seed, recipe in enumerate(members):
        seed_everything(seed)
        model = build_network(recipe.spec(encoded, rows), encoded.schema)
        generator = torch.Generator().manual_seed(seed)
        fits.append(
            (model, recipe.build_optimizer(model), recipe.task(encoded, rows, CPU), generator)
        )

    def run() -> None:
        for model, optimizer, task, generator in fits:
            train_epoch(model, optimizer, train, task, members[0].batch_size, generator)
            evaluate(model, val, task)

    return run


def batched_epoch(prepared: Prepared, members: list[Recipe]) -> Callable[[], None]:
    """One epoch of all members as one batched model."""
    encoded, rows = prepared.search, prepared.split.train
    train = Tensors.select(encoded, rows, CPU)
    val = Tensors.select(encoded, prepared.split.val, CPU)
    batch = [Member(recipe, seed) for seed, recipe in enumerate(members)]
    model, task = build_batch(batch, encoded, rows, CPU)
    optimizer = StackedOptimizer(model, "adam", [recipe.params for recipe in members])
    shuffles = [torch.Generator().manual_seed(seed) for seed in range(len(members))]

    def run() -> None:
        train_epoch_batched(model, optimizer, train, task, members[0].batch_size, shuffles)
        evaluate_batched(model, val, task)

    return run


def timed(run: Callable[[], None]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def compare(prepared: Prepared, hidden: tuple[int, ...], batch: int, k: int, repeats: int) -> None:
    members = recipes(prepared, hidden, batch, k)
    lone, batched = lone_epoch(prepared, members), batched_epoch(prepared, members)
    lone(), batched()  # warm-up
    lone_s, batched_s = [], []
    for _ in range(repeats):  # alternating, so both see the same machine load
        lone_s.append(timed(lone))
        batched_s.append(timed(batched))
    a, b = statistics.median(lone_s), statistics.median(batched_s)
    print(
        f"{'x'.join(map(str, hidden)):>12} {batch:>5} {k:>3} {a * 1e3:9.1f} {b * 1e3:9.1f}"
        f" {a / k * 1e3:8.2f} {b / k * 1e3:8.2f} {a / b:6.2f}x"
    )


def vmap_step(prepared: Prepared, members: list[Recipe]) -> tuple[float, float]:
    """Median ms of one forward+backward step: baddbmm module vs stack_module_state+vmap."""
    from torch.func import functional_call, stack_module_state, vmap

    encoded, rows = prepared.search, prepared.split.train
    batch = members[0].batch_size
    model, task = build_batch([Member(r, s) for s, r in enumerate(members)], encoded, rows, CPU)
    networks = [build_network(r.spec(encoded, rows), encoded.schema) for r in members]
    params, buffers = stack_module_state(networks)  # type: ignore[arg-type]
    base = networks[0].to("meta")
    codes = torch.as_tensor(encoded.codes[rows[:batch]]).expand(len(members), -1, -1)
    numbers = torch.as_tensor(encoded.numbers[rows[:batch]]).expand(len(members), -1, -1)
    y = torch.as_tensor(encoded.y[rows[:batch]]).expand(len(members), -1)

    def one(p: dict, b: dict, c: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        return functional_call(base, (p, b), (c, n))

    def step_bmm() -> None:
        member_losses(task, model(codes, numbers), y).sum().backward()

    def step_vmap() -> None:
        out = vmap(one, randomness="different")(params, buffers, codes, numbers)
        member_losses(task, out, y).sum().backward()

    for step in (step_bmm, step_vmap):
        step()
    bmm_s = [timed(step_bmm) for _ in range(20)]
    vmap_s = [timed(step_vmap) for _ in range(20)]
    return statistics.median(bmm_s) * 1e3, statistics.median(vmap_s) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", default="1,4,8,16,32")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    set_threads(args.threads)
    prepared = prepare(RunConfig())
    ks = [int(k) for k in args.members.split(",")]
    print(f"car data: {len(prepared.split.train)} training rows, {args.threads} torch thread(s)")
    print("note: a shared machine; medians of alternating repeats, not a quiet-machine figure")
    print(
        f"{'hidden':>12} {'batch':>5} {'K':>3} {'lone ms':>9} {'batch ms':>9}"
        f" {'lone/m':>8} {'batch/m':>8} {'speedup':>7}"
    )
    for hidden, batch in SHAPES:
        for k in ks:
            compare(prepared, hidden, batch, k, args.repeats)
    print("one training step (forward+backward), ms: baddbmm module vs stack_module_state+vmap")
    for hidden, batch in SHAPES[:2]:
        for k in (8, 32):
            bmm_ms, vmap_ms = vmap_step(prepared, recipes(prepared, hidden, batch, k))
            print(
                f"{'x'.join(map(str, hidden)):>12} {batch:>5} {k:>3} {bmm_ms:8.2f} {vmap_ms:8.2f}"
            )


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    main()
