"""How carsearch's costs grow: with the table's rows, and with the study's trials.

Part 1, rows: the car data and a synthetic mixed table generated here (10 numeric columns,
one with missing values, 5 categorical ones, 3 classes) at 10k, 100k and 1M rows. For each,
one fixed configuration (2 layers of 128, ``ple``, the batch size the rule gives) trains 3
epochs; the script prints seconds per epoch, seconds for a trial of 10 epochs (training and
validation, as a search runs it), the rows per second, and the process's peak memory. Each
size runs in a process of its own, so the peak is its own.

Part 2, trials: one study on the car data's search space grows to 1000 trials; the trials
train nothing (each reports made-up epochs to successive halving), so what is timed is the
sampler and the storage alone. Prints trials per second over trials 1-100, 101-300 and
301-1000, on SQLite and on Optuna's in-memory storage (the sampler's share alone).

    python bench/scale.py                  # both parts
    python bench/scale.py --rows 10000     # part 1 at one size
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SIZES = (10_000, 100_000, 1_000_000)
EPOCHS_PER_TRIAL = 10
PARAMS = {
    "numeric_encoding": "ple",
    "ple_n_bins": 16,
    "ple_d_embedding": 8,
    "ple_activation": False,
    "embedding_rule": "textbook",
    "embedding_dropout": 0.1,
    "n_layers": 2,
    "n_units_l0": 128,
    "n_units_l1": 128,
    "dropout": 0.1,
    "batch_norm": True,
    "optimizer": "adam",
    "adam_lr": 1e-3,
    "adam_weight_decay": 1e-6,
    "class_weight": "none",
    "lr_scheduler": "none",
}


def synthetic_table(n_rows: int, seed: int = 0) -> pd.DataFrame:
    """A mixed table with a learnable 3-class target."""
    rng = np.random.default_rng(seed)
    numbers = rng.normal(size=(n_rows, 10))
    numbers[rng.random(n_rows) < 0.1, 3] = np.nan
    frame = pd.DataFrame(numbers, columns=[f"x{i}" for i in range(10)])
    for j, size in enumerate((3, 5, 10, 30, 100)):
        frame[f"c{j}"] = rng.integers(0, size, n_rows).astype(str)
    score = numbers[:, 0] + np.nan_to_num(numbers[:, 3]) * 0.5 + (frame["c1"] == "2") * 1.0
    frame["label"] = np.select([score < -0.5, score < 0.7], ["low", "mid"], "high")
    return frame


def epoch_costs(rows: int | None) -> dict[str, float]:
    """Seconds per epoch and per trial of one configuration on ``rows`` rows (None: cars)."""
    import torch

    from carsearch import RunConfig
    from carsearch.data.prepare import prepare
    from carsearch.data.table import make_table

    torch.set_num_threads(1)
    config = RunConfig()
    table = None if rows is None else make_table(synthetic_table(rows), "label", source="synthetic")
    prepared = prepare(config, table)
    epoch, batch = timed_epochs(prepared, config, PARAMS, n_epochs=3)
    return {
        "rows": len(prepared.table.frame),
        "batch": batch,
        "epoch_s": epoch,
        "trial_s": epoch * EPOCHS_PER_TRIAL,
        "rows_per_s": len(prepared.split.train) / epoch,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def timed_epochs(
    prepared: Any, config: Any, params: dict[str, Any], n_epochs: int
) -> tuple[float, int]:
    """Seconds per epoch (training, then validation) of ``params`` on ``prepared``, on the
    CPU, with the batch size the rule gives; and that batch size."""
    import torch

    from carsearch.models.network import build_network
    from carsearch.search.space import batch_sizes, replay
    from carsearch.training.loop import Tensors, evaluate, train_epoch

    encoded, train_rows = prepared.search, prepared.split.train
    params = {**params, "batch_size": batch_sizes(len(train_rows))[1]}
    recipe = replay(params, config, encoded.schema, len(train_rows))
    model = build_network(recipe.spec(encoded, train_rows), encoded.schema)
    cpu = torch.device("cpu")
    optimizer, task = recipe.build_optimizer(model), recipe.task(encoded, train_rows, cpu)
    train = Tensors.select(encoded, train_rows, cpu)
    val = Tensors.select(encoded, prepared.split.val, cpu)
    generator = torch.Generator().manual_seed(0)
    started = time.perf_counter()
    for _ in range(n_epochs):
        train_epoch(model, optimizer, train, task, recipe.batch_size, generator)
        evaluate(model, val, task)
    return (time.perf_counter() - started) / n_epochs, recipe.batch_size


def trials_per_second(n_trials: int = 1000, *, in_memory: bool = False) -> list[tuple[str, float]]:
    """Trials per second of sampler and storage alone, as one study grows (``in_memory``:
    Optuna's in-memory storage, so the sampler's part alone)."""
    import optuna

    from carsearch import RunConfig
    from carsearch.data.prepare import prepare
    from carsearch.search.space import suggest
    from carsearch.search.study import make_pruner, make_sampler
    from carsearch.storage.open import make_storage
    from carsearch.storage.seam import trial_storage

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    config = RunConfig()
    prepared = prepare(config)
    schema, n_train = prepared.search.schema, len(prepared.split.train)
    rng = np.random.default_rng(0)

    def objective(trial: optuna.Trial) -> float:
        suggest(trial, config, schema, n_train)
        value = 1.0 + rng.random()
        for epoch in range(1, config.max_epochs + 1):
            trial.report(value / epoch, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return value / config.max_epochs

    with tempfile.TemporaryDirectory() as folder:
        storage = (
            None
            if in_memory
            else trial_storage(make_storage(f"sqlite:///{Path(folder) / 'scale.db'}"))
        )
        study = optuna.create_study(
            storage=storage, sampler=make_sampler(config, 0), pruner=make_pruner(config)
        )
        windows, done, rates = ((0, 100), (100, 300), (300, n_trials)), 0, []
        for first, last in windows:
            started = time.perf_counter()
            study.optimize(objective, n_trials=last - done)
            seconds = time.perf_counter() - started
            rates.append((f"trials {first + 1}-{last}", (last - done) / seconds))
            done = last
    return rates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="*", help="part 1 at these sizes only")
    parser.add_argument("--trials", type=int, default=1000, help="part 2: the study's size")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        print(json.dumps(epoch_costs(args.worker or None)))
        return 0
    print("| table | rows | batch | s / epoch | s / trial (10 epochs) | train rows / s | peak MB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for rows in [0, *(SIZES if args.rows is None else args.rows)]:
        command = [sys.executable, __file__, "--worker", str(rows)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        cost = json.loads(done.stdout.strip().splitlines()[-1])
        name = "Car Evaluation" if rows == 0 else "synthetic mixed"
        print(
            f"| {name} | {cost['rows']:,} | {cost['batch']} | {cost['epoch_s']:.3f} | "
            f"{cost['trial_s']:.2f} | {cost['rows_per_s']:,.0f} | {cost['peak_mb']:.0f} |"
        )
    if args.trials:
        print("\n| study size | trials / s, SQLite | trials / s, in memory (sampler alone) |")
        print("|---|---:|---:|")
        stored, in_memory = (trials_per_second(args.trials, in_memory=m) for m in (False, True))
        for (window, rate), (_, memory_rate) in zip(stored, in_memory, strict=True):
            print(f"| {window} | {rate:.1f} | {memory_rate:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
