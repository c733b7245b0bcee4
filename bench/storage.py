"""The storage part of a trial: plain Optuna writes against carsearch's buffered ones.

Runs the same seeded study twice on a fresh SQLite file, a trial being what carsearch's
objective does to the storage without training anything: 13 suggested parameters, 3 user
attributes, then 15 epochs each reported and checked by successive halving (rungs at 2, 6,
18), a value at the end. Whatever the run takes is storage and sampling; sampling is measured
apart, on an in-memory study, and taken off. Prints milliseconds per trial and the ratio.

    python bench/storage.py                 # 100 trials
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import optuna

from carsearch.storage.open import make_storage
from carsearch.storage.seam import trial_storage

N_EPOCHS = 15


def objective(trial: optuna.Trial) -> float:
    """carsearch's storage traffic, on values that depend only on the parameters."""
    x = [trial.suggest_float(f"p{i}", 0.0, 1.0) for i in range(10)]
    x.append(trial.suggest_int("n", 1, 4))
    x.append(float(trial.suggest_categorical("c", [0, 1, 2])))
    x.append(trial.suggest_float("lr", 1e-4, 1e-1, log=True))
    for key in ("device", "seed", "best_epoch"):
        trial.set_user_attr(key, 1)
    loss = sum(x) / len(x)
    for epoch in range(1, N_EPOCHS + 1):
        trial.report(loss / epoch, epoch)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return loss / N_EPOCHS


def seconds(storage: optuna.storages.BaseStorage | None, n_trials: int) -> float:
    """Wall time of ``n_trials`` trials of :func:`objective` on ``storage``."""
    study = optuna.create_study(
        storage=storage,
        sampler=optuna.samplers.TPESampler(seed=0, multivariate=True),
        pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=2, reduction_factor=3),
    )
    started = time.perf_counter()
    study.optimize(objective, n_trials=n_trials)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    n = args.trials
    sampling = seconds(None, n)
    with tempfile.TemporaryDirectory() as folder:
        plain = seconds(make_storage(f"sqlite:///{Path(folder) / 'plain.db'}"), n)
        url = f"sqlite:///{Path(folder) / 'buffered.db'}"
        buffered = seconds(trial_storage(make_storage(url)), n)
    per_trial = {
        name: 1000 * (total - sampling) / n
        for name, total in (("plain Optuna RDB", plain), ("carsearch buffered", buffered))
    }
    print(f"{n} trials, {N_EPOCHS} epochs each at most, SQLite")
    print(f"sampling alone (in memory): {1000 * sampling / n:.1f} ms a trial")
    for name, ms in per_trial.items():
        print(f"{name:<22} storage {ms:6.1f} ms a trial")
    ratio = per_trial["plain Optuna RDB"] / per_trial["carsearch buffered"]
    print(f"buffered is {ratio:.1f}x less")


if __name__ == "__main__":
    main()
