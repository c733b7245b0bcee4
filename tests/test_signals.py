"""SIGTERM, what SLURM, Kubernetes and systemd send to stop a job: handled as Ctrl-C is.

A real ``carsearch run`` process is stopped mid-trial; the SQLite file must then hold no
running trial, every finished trial as it was, and the same command must finish the study.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from carsearch.search.study import FINISHED
from helpers import make_frame, stoppable_run_args

TERMINATED = "terminated (SIGTERM): finished trials are stored; run again to continue"
N_TRIALS = 4


def carsearch_run(data: Path, storage: str, *extra: str) -> list[str]:
    # With 3000 rows, trials of about a second: a signal sent just after one starts arrives
    # while it trains.
    run = stoppable_run_args(data, storage, "stopped")
    return [sys.executable, "-m", "carsearch.cli", *run, "--trials", str(N_TRIALS), *extra]


def trials(storage: str) -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name="stopped", storage=storage).get_trials()
    except KeyError:
        return []


def wait_for_running(
    storage: str, process: subprocess.Popen[str], *, n_running: int, n_finished: int
) -> list[optuna.trial.FrozenTrial]:
    """The trials once ``n_finished`` have finished and ``n_running`` run at once."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        found = trials(storage)
        states = [trial.state for trial in found]
        if states.count(TrialState.RUNNING) >= n_running and (
            sum(state in FINISHED for state in states) >= n_finished
        ):
            return found
        time.sleep(0.05)
    raise AssertionError(f"no {n_running} running trial(s) after {n_finished} finished in time")


def finished_records(found: list[optuna.trial.FrozenTrial]) -> dict[int, tuple[object, ...]]:
    return {
        t.number: (t.state, t.params, t.value, t.user_attrs) for t in found if t.state in FINISHED
    }


def stop_and_check(
    storage: str, process: subprocess.Popen[str], *, n_running: int
) -> dict[int, tuple[object, ...]]:
    """SIGTERM mid-trial; checks the exit, stderr and the stored trials, returns the kept ones."""
    before = wait_for_running(storage, process, n_running=n_running, n_finished=1)
    time.sleep(0.1)  # into the running trials' training, well before their end
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    assert err.splitlines()[-1] == TERMINATED
    assert "Traceback" not in err and err.count("terminated") == 1

    after = trials(storage)
    assert [t.number for t in after if t.state == TrialState.RUNNING] == []
    interrupted = [t.number for t in before if t.state == TrialState.RUNNING]
    assert [t.number for t in after if t.state == TrialState.FAIL] == interrupted
    kept = finished_records(before)
    assert {n: r for n, r in finished_records(after).items() if n in kept} == kept
    return finished_records(after)


def resume_and_check(command: list[str], storage: str, kept: dict[int, tuple[object, ...]]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    now = finished_records(trials(storage))
    assert len(now) == N_TRIALS
    assert {n: r for n, r in now.items() if n in kept} == kept


@pytest.fixture
def table(tmp_path: Path) -> Path:
    path = tmp_path / "mid.csv"
    make_frame(n_rows=3000).to_csv(path, index=False)
    return path


def test_sigterm_fails_the_running_trial_and_the_same_command_resumes(
    table: Path, tmp_path: Path
) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}"
    command = carsearch_run(table, storage)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    kept = stop_and_check(storage, process, n_running=1)
    resume_and_check(command, storage, kept)


@pytest.mark.slow
def test_sigterm_to_the_parent_of_jobs_reaches_its_workers(table: Path, tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}"
    command = carsearch_run(table, storage, "--jobs", "2")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    # Both workers mid-trial: a parent that did not pass SIGTERM on would leave their trials
    # running (its own KeyboardInterrupt would end them only by SIGKILL, 10 s later).
    kept = stop_and_check(storage, process, n_running=2)
    resume_and_check(command, storage, kept)


STOP_IN_A_FINALIZER = """
import sys
from carsearch.search import stop

class Finalized:
    def __del__(self):
        raise KeyboardInterrupt  # where a signal's handler may land: Python drops it

stop.ask(15)
Finalized()
try:
    stop.raise_if_asked()
except KeyboardInterrupt:
    print("raised at the next check")
"""


def test_a_stop_a_finalizer_swallowed_is_raised_at_the_next_check_without_a_word() -> None:
    done = subprocess.run(
        [sys.executable, "-c", STOP_IN_A_FINALIZER], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "raised at the next check"
    assert done.stderr == ""  # no "Exception ignored in ..." traceback
