"""Surviving faults: a worker killed mid-trial, a trial over its time, a CUDA out-of-memory."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
from optuna.trial import TrialState

import carsearch
import carsearch.search.objective
from carsearch import RunConfig, StudyError
from carsearch.cli import main
from carsearch.data.prepare import default_study_name, prepare
from carsearch.pipeline import optimize
from carsearch.search.study import count_trials, open_study
from carsearch.storage.open import make_storage

TIMEOUT_REASON = "trial ran past its 1e-06 s limit at epoch 1"


def cli_args(config: RunConfig) -> list[str]:
    """``carsearch run`` options for ``config`` (the fields the fault tests change)."""
    return [
        "run",
        f"--data={config.data}",
        f"--storage={config.storage}",
        f"--trials={config.n_trials}",
        f"--max-epochs={config.max_epochs}",
        f"--patience={config.patience}",
        f"--pruner={config.pruner}",
        f"--refit-seeds={config.refit_seeds}",
        "--device=cpu",
    ]


def wait_until_mid_trial(path: Path, victim: subprocess.Popen[bytes]) -> int:
    """Poll the study file until a trial has completed and the next is training.

    A running trial's parameters are stored before it trains (its epochs only at its end):
    a running trial with parameters is in training. Returns its number.
    """
    query = """
        SELECT t.number FROM trials t
        WHERE t.state = 'RUNNING' AND EXISTS (
            SELECT 1 FROM trial_params p WHERE p.trial_id = t.trial_id)
        AND (SELECT COUNT(*) FROM trials WHERE state = 'COMPLETE') >= 1
    """
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert victim.poll() is None, "the worker ended before it could be killed"
        if path.is_file():
            try:
                with sqlite3.connect(path, timeout=5) as connection:
                    row = connection.execute(query).fetchone()
                connection.close()
            except sqlite3.OperationalError:
                row = None  # the tables are not made yet
            if row is not None:
                return int(row[0])
        time.sleep(0.05)
    raise AssertionError("no trial was mid-way within 180 s")


def record(trial: optuna.trial.FrozenTrial) -> tuple[Any, ...]:
    return (trial.number, trial.params, trial.value, trial.datetime_complete, trial.user_attrs)


@pytest.mark.slow
def test_a_killed_workers_trial_is_failed_and_retried_on_resume(
    fast_config: RunConfig, tmp_path: Path
) -> None:
    # Trials of 60 epochs last long enough to be caught mid-way.
    config = fast_config.replace(n_trials=4, max_epochs=60, patience=60, pruner="none")
    path = tmp_path / "studies.db"
    victim = subprocess.Popen(
        [sys.executable, "-m", "carsearch.cli", *cli_args(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        killed = wait_until_mid_trial(path, victim)
    finally:
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
    name = default_study_name(config)
    stale = optuna.load_study(study_name=name, storage=f"sqlite:///{path}")
    kept = [record(t) for t in stale.get_trials(states=(TrialState.COMPLETE,))]
    assert stale.trials[killed].state == TrialState.RUNNING
    killed_params = stale.trials[killed].params

    # Resume: this process fails the trial once its heartbeat is 2 s old, then retries it.
    storage = make_storage(
        config.storage, trial_budget=config.n_trials, heartbeat_interval=1, grace_period=2
    )
    prepared = prepare(config)
    study = open_study(config, storage=storage, name=name, table=prepared.table)
    optimize(study, config, prepared, torch.device("cpu"))

    trials = study.trials
    assert trials[killed].state == TrialState.FAIL
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == killed]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    assert retries[0].params == killed_params
    assert [record(trials[number]) for number, *_ in kept] == kept, "completed trials changed"
    counts = count_trials(study)
    assert counts["complete"] + counts["pruned"] == config.n_trials
    assert (counts["failed"], counts["running"], counts["waiting"]) == (1, 0, 0)


def test_a_running_trial_that_never_sent_a_heartbeat_is_failed_and_retried(
    fast_config: RunConfig, tmp_path: Path
) -> None:
    """A trial left running by a run without heartbeats (an older carsearch) is not waited for."""
    before = carsearch.run(fast_config.replace(n_trials=2)).study
    kept = [record(t) for t in before.trials]
    url = fast_config.storage
    plain = optuna.load_study(study_name="tiny", storage=url)  # Optuna's storage: no heartbeat
    orphan = plain.ask()
    orphan.suggest_int("n_layers", 1, 4)
    with sqlite3.connect(tmp_path / "studies.db") as connection:
        connection.execute(
            "UPDATE trials SET datetime_start = '2020-01-01 00:00:00.000000' WHERE number = ?",
            (orphan.number,),
        )
    connection.close()
    study = carsearch.run(fast_config.replace(n_trials=3)).study
    assert study.trials[orphan.number].state == TrialState.FAIL
    (retry,) = [t for t in study.trials if t.system_attrs.get("failed_trial") == orphan.number]
    assert retry.params["n_layers"] == orphan.params["n_layers"]
    assert [record(t) for t in study.trials[:2]] == kept
    counts = count_trials(study)
    assert counts["complete"] + counts["pruned"] == 3 and counts["running"] == 0


def test_trials_past_their_time_limit_fail_with_the_reason(fast_config: RunConfig) -> None:
    config = fast_config.replace(trial_timeout=1e-6)
    with pytest.raises(StudyError, match=f"5 failed in a row, the last because {TIMEOUT_REASON}"):
        carsearch.run(config)
    study = optuna.load_study(study_name="tiny", storage=config.storage)
    assert [t.state for t in study.trials] == [TrialState.FAIL] * 5
    assert {t.user_attrs["fail_reason"] for t in study.trials} == {TIMEOUT_REASON}


def test_cli_trial_timeout(fast_config: RunConfig, capsys: pytest.CaptureFixture[str]) -> None:
    status = main([*cli_args(fast_config), "--trial-timeout=1e-6"])
    assert status == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: no trial completed") and error.endswith(TIMEOUT_REASON)


def test_a_cuda_out_of_memory_fails_that_trial_and_the_study_goes_on(
    fast_config: RunConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fit = carsearch.search.objective.fit
    calls = []

    def fit_out_of_memory_once(*args: Any, **kwargs: Any) -> Any:
        # A CUDA out-of-memory cannot happen on this CPU machine: raise what torch raises.
        calls.append(1)
        if len(calls) == 2:
            raise torch.OutOfMemoryError(
                "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.1 GiB total)\n"
                "See documentation for Memory Management"
            )
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(carsearch.search.objective, "fit", fit_out_of_memory_once)
    result = carsearch.run(fast_config.replace(n_trials=3))
    failed = result.study.get_trials(states=(TrialState.FAIL,))
    assert [t.number for t in failed] == [1]
    assert failed[0].user_attrs["fail_reason"] == (
        "out of memory on cpu: CUDA out of memory. Tried to allocate 2.00 GiB "
        "(GPU 0; 79.1 GiB total)"
    )
    assert result.summary.n_complete + result.summary.n_pruned == 3
