"""Helpers the tests share: the tiny generated table, its fast run, child processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd

from carsearch import RunConfig
from carsearch.bundle.format import MANIFEST
from carsearch.bundle.integrity import seal_folder

#: The keys ``carsearch run --json`` and ``carsearch.run(...).summary`` promise.
SUMMARY_KEYS = frozenset(
    {
        "study",
        "storage",
        "n_trials",
        "n_complete",
        "n_pruned",
        "n_failed",
        "best_trial",
        "best_value",
        "task",
        "best_params",
        "device",
        "wall_seconds",
        "test",
    }
)


def make_frame(n_rows: int = 240, seed: int = 0) -> pd.DataFrame:
    """A learnable categorical table: the class is a rule over three of four columns."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "colour": rng.choice(["red", "green", "blue"], n_rows),
            "size": rng.choice(["s", "m", "l", "xl"], n_rows),
            "shape": rng.choice(["round", "square"], n_rows),
            "noise": rng.choice(["a", "b", "c"], n_rows),
        }
    )
    big = frame["size"].isin(["l", "xl"])
    frame["label"] = np.where(
        big & (frame["colour"] == "red"), "yes", np.where(frame["shape"] == "round", "maybe", "no")
    )
    return frame


def make_mixed_frame(n_rows: int = 300, seed: int = 0) -> pd.DataFrame:
    """A learnable mixed table of strings, as read from a file: two numeric columns (one
    with missing values), two categorical ones (one with missing values), three classes."""
    rng = np.random.default_rng(seed)
    income = rng.lognormal(10.0, 0.6, n_rows)
    age = rng.integers(18, 80, n_rows).astype(float)
    city = rng.choice(["paris", "rome", "oslo", "lima"], n_rows)
    plan = rng.choice(["basic", "plus", ""], n_rows)
    score = np.log(income) - 10 + (city == "oslo") * 0.8 + (age > 50) * 0.5
    label = np.where(score > 0.9, "high", np.where(score > 0.1, "mid", "low"))
    ages = [("" if i % 9 == 0 else f"{a:g}") for i, a in enumerate(age)]
    return pd.DataFrame(
        {
            "income": [f"{v:.2f}" for v in income],
            "age": ages,
            "city": city,
            "plan": plan,
            "label": label,
        }
    )


def tiny_config(folder: Path, **changes: Any) -> RunConfig:
    """A few-second run on the tiny table in ``folder`` (written if missing), stored in a
    SQLite file there."""
    data = folder / "tiny.csv"
    if not data.exists():
        make_frame().to_csv(data, index=False)
    config = RunConfig(
        data=str(data),
        n_trials=3,
        max_epochs=3,
        patience=2,
        refit_seeds=2,
        storage=f"sqlite:///{folder / 'studies.db'}",
        device="cpu",
    )
    return config.replace(**changes)


def stoppable_run_args(data: Path, storage: str, study: str) -> list[str]:
    """``carsearch run`` options for a run a test stops mid-trial: 40 epochs without pruning
    or early stopping (trials long enough that a signal arrives while one trains), one
    refit, on the CPU."""
    return [
        "run",
        "--data",
        str(data),
        "--storage",
        storage,
        "--study",
        study,
        "--max-epochs",
        "40",
        "--patience",
        "40",
        "--pruner",
        "none",
        "--refit-seeds",
        "1",
        "--device",
        "cpu",
    ]


def restore_sigint() -> None:
    """``preexec_fn`` giving a child the default Ctrl-C behaviour.

    A process started from a background job (as CI and ``cmd &`` do) inherits SIGINT ignored,
    and Python then installs no KeyboardInterrupt handler: a Ctrl-C test would hang.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def raise_in_worker(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """A callback that breaks a worker after its first trial (here, so workers can unpickle it)."""
    raise RuntimeError(f"broken after trial {trial.number}")


def kill_worker(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """A callback that kills its worker outright (SIGKILL) once its first trial is stored."""
    os.kill(os.getpid(), signal.SIGKILL)


def carsearch_without(package: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``carsearch *args`` in a process where ``package`` cannot be imported, as if it were
    not installed."""
    script = (
        f"import sys; sys.modules[{package!r}] = None\n"
        "from carsearch.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    command = [sys.executable, "-c", script, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def edit_manifest(bundle: Path, change: Callable[[dict], object]) -> None:
    """Change model.json and its integrity record, as someone editing both would: the
    integrity file is a checksum, not a signature, so the manifest's own checks must hold."""
    tamper_manifest(bundle, change)
    seal_folder(bundle)


def tamper_manifest(bundle: Path, change: Callable[[dict], object]) -> None:
    """Change model.json alone, written as carsearch writes it (same layout)."""
    manifest = json.loads((bundle / MANIFEST).read_text())
    change(manifest)
    (bundle / MANIFEST).write_text(json.dumps(manifest, indent=2))
