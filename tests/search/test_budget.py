"""--time-limit: search, refit and export in one budget, and the summary's split of the time."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import time
from pathlib import Path

import optuna
import torch

from carsearch import RunConfig
from carsearch.data.prepare import prepare
from carsearch.search.budget import EXPORT_SECONDS, MAX_RESERVE_SHARE, TimeBudget
from carsearch.search.space import replay
from carsearch.training.refit import refit
from helpers import make_mixed_frame, tiny_config


def finished_trial(seconds: float, n_epochs: int, best_epoch: int) -> optuna.trial.FrozenTrial:
    start = datetime.datetime(2026, 1, 1)
    return optuna.trial.FrozenTrial(
        number=0,
        trial_id=0,
        state=optuna.trial.TrialState.COMPLETE,
        value=0.5,
        datetime_start=start,
        datetime_complete=start + datetime.timedelta(seconds=seconds),
        params={},
        distributions={},
        user_attrs={"best_epoch": best_epoch},
        system_attrs={},
        intermediate_values={epoch: 0.5 for epoch in range(1, n_epochs + 1)},
    )


def test_the_reserve_is_the_best_trials_refit_and_export_estimated() -> None:
    budget = TimeBudget(1000.0, n_train=800, n_refit=1000, started=0.0)
    study = optuna.create_study()
    config = RunConfig(refit_seeds=3)
    assert budget.reserve(study, config) == MAX_RESERVE_SHARE * 1000  # no trial yet
    study.add_trial(finished_trial(seconds=20.0, n_epochs=10, best_epoch=4))
    # 2 s an epoch, 4 epochs, 3 members, 1000 / 800 rows: 30 s, then the export.
    assert budget.reserve(study, config) == 30.0 + EXPORT_SECONDS
    assert budget.search_deadline(study, config) == 1000.0 - 30.0 - EXPORT_SECONDS
    assert TimeBudget(40.0, n_train=800, n_refit=1000).reserve(study, config) == 20.0  # capped


def test_a_refit_past_its_deadline_keeps_one_member_of_one_epoch(tmp_path: Path) -> None:
    config = tiny_config(tmp_path, refit_seeds=3).for_task("classification")
    prepared = prepare(config)
    params = {
        "embedding_rule": "textbook",
        "numeric_encoding": "standard",
        "n_layers": 1,
        "n_units_l0": 8,
        "dropout": 0.0,
        "embedding_dropout": 0.0,
        "batch_norm": False,
        "optimizer": "adam",
        "adam_lr": 1e-3,
        "adam_weight_decay": 1e-6,
        "batch_size": 128,
        "lr_scheduler": "none",
    }
    recipe = replay(params, config, prepared.final.schema, len(prepared.refit_rows))
    cpu = torch.device("cpu")
    late = refit(config, prepared, recipe, 50, cpu, deadline=time.monotonic())
    assert len(late.seeds) == 1 and len(late.model.members) == 1
    assert len(refit(config, prepared, recipe, 2, cpu).seeds) == 3  # no deadline: all of them


def test_a_run_with_a_time_limit_ends_in_it_and_says_where_the_time_went(tmp_path: Path) -> None:
    data = tmp_path / "mixed.csv"
    make_mixed_frame(n_rows=300).to_csv(data, index=False)
    limit = 10.0
    command = [sys.executable, "-m", "carsearch.cli", "run", "--data", str(data)]
    command += ["--target", "label", "--trials", "10000", "--time-limit", str(limit)]
    command += ["--storage", f"sqlite:///{tmp_path / 's.db'}", "--device", "cpu", "--json"]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["n_trials"] < 10000  # the search alone would have taken far longer
    seconds = summary["seconds"]
    assert set(seconds) == {"prepare", "search", "refit", "export"}
    assert all(value >= 0 for value in seconds.values())
    assert sum(seconds.values()) <= summary["wall_seconds"] + 0.1
    assert summary["wall_seconds"] <= limit * 1.3 + 5
    assert summary["test"]["accuracy"] > 0
