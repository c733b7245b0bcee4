"""SIGTERM, what SLURM, Kubernetes and systemd send to stop a job: handled as Ctrl-C is.

A real ``carsearch run`` process is stopped mid-trial; the SQLite file must then hold no
running trial, every finished trial as it was, and the same command must finish the study.
A ``--jobs`` parent killed outright (SIGKILL) takes its workers with it, as quietly.
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

    return check_stopped(storage, before)


def check_stopped(
    storage: str, before: list[optuna.trial.FrozenTrial]
) -> dict[int, tuple[object, ...]]:
    """After a stop: the trials running ``before`` failed, none runs, the finished ones are
    kept as they were; returns the finished ones."""
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


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is ``pid``, read from ``/proc``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # ended meanwhile
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie nobody reaped has ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def wait_until_ended(pids: list[int], seconds: float) -> list[int]:
    """The processes of ``pids`` still running after up to ``seconds``."""
    deadline = time.monotonic() + seconds
    while (left := [pid for pid in pids if alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def end_all(pids: list[int]) -> None:
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


needs_proc = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="reads the process tree from /proc"
)


@pytest.mark.slow
@needs_proc
def test_sigkill_of_the_parent_of_jobs_ends_its_workers_and_the_same_command_resumes(
    table: Path, tmp_path: Path
) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}"
    command = carsearch_run(table, storage, "--jobs", "2")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    before = wait_for_running(storage, process, n_running=2, n_finished=1)
    children = child_pids(process.pid)  # the two workers (and multiprocessing's tracker)
    try:
        assert len(children) >= 2
        time.sleep(0.1)  # into the running trials' training, well before their end
        process.kill()
        _, err = process.communicate(timeout=60)  # the workers hold stderr until they end
        assert wait_until_ended(children, 60) == []
    finally:
        end_all(children)
    assert "Traceback" not in err and "Error" not in err, err

    check_stopped(storage, before)
    resume_and_check(command, storage, finished_records(before))


WATCHING_CHILD = """
import os, sys, time
from carsearch.search import stop

stop.watch_parent(os.getppid())
print("watching", flush=True)
while not stop.asked():
    time.sleep(0.05)
open(sys.argv[1], "w").write("stopped")
"""

PARENT_OF_WATCHING_CHILD = """
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]], stdout=subprocess.PIPE)
print(child.pid, child.stdout.readline().decode().strip(), flush=True)
child.wait()
"""


@needs_proc
def test_a_process_watching_its_parent_is_asked_to_stop_once_the_parent_dies(
    tmp_path: Path,
) -> None:
    # The check every epoch makes, on its own: no death signal here, only os.getppid().
    mark = tmp_path / "stopped"
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT_OF_WATCHING_CHILD, WATCHING_CHILD, str(mark)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    pid, state = parent.stdout.readline().split()
    try:
        assert state == "watching" and not mark.exists()
        parent.kill()
        parent.wait()
        assert wait_until_ended([int(pid)], 60) == []
    finally:
        end_all([int(pid)])
    assert mark.read_text() == "stopped"
