"""One suite over every storage carsearch runs on, as Optuna's ``optuna/testing/storages.py``.

The same tests run over {plain RDB path (``--live-writes``), buffered path} x {SQLite,
PostgreSQL, MariaDB}; a server that does not answer skips its cases (CI runs both). Each case
gets a database of its own, dropped after.
"""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from carsearch.config import RunConfig
from carsearch.search.study import FINISHED
from carsearch.search.trials import run_trials
from carsearch.storage.rdb import BudgetReached
from carsearch.storage.seam import Storage, open_storage
from helpers import make_frame

BACKENDS = ("sqlite", "postgresql", "mariadb")
PATHS = {"rdb": True, "buffered": False}  # the name of the path -> live_writes
TINY_RUN = ["--max-epochs", "2", "--patience", "2", "--refit-seeds", "1", "--device", "cpu"]
pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed")


def _server(backend: str) -> Any:
    """An autocommit connection to the test server of ``backend``; the test skips without."""
    if backend == "postgresql":
        psycopg = pytest.importorskip("psycopg")
        try:
            return psycopg.connect(
                host="127.0.0.1", user="postgres", dbname="test", connect_timeout=3, autocommit=True
            )
        except psycopg.OperationalError as error:
            pytest.skip(f"no PostgreSQL at 127.0.0.1:5432: {error}")
    pymysql = pytest.importorskip("pymysql")
    try:
        return pymysql.connect(
            host="127.0.0.1", user="root", password="", connect_timeout=3, autocommit=True
        )
    except pymysql.err.OperationalError as error:
        pytest.skip(f"no MariaDB at 127.0.0.1:3306: {error}")


@contextmanager
def fresh_url(backend: str, folder: Path) -> Iterator[str]:
    """The URL of an empty storage of ``backend``: a new SQLite file, or a new database."""
    name = f"carsearch_race_{uuid.uuid4().hex[:12]}"
    if backend == "sqlite":
        yield f"sqlite:///{folder / name}.db"
        return
    server = _server(backend)
    quoted = f'"{name}"' if backend == "postgresql" else f"`{name}`"
    server.cursor().execute(f"CREATE DATABASE {quoted}")
    try:
        if backend == "postgresql":
            yield f"postgresql://postgres@127.0.0.1:5432/{name}"
        else:
            yield f"mysql://root@127.0.0.1:3306/{name}"
    finally:
        force = " WITH (FORCE)" if backend == "postgresql" else ""
        server.cursor().execute(f"DROP DATABASE {quoted}{force}")
        server.close()


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_url(request.param, tmp_path) as fresh:
        yield fresh


@pytest.fixture(params=sorted(PATHS))
def live_writes(request: pytest.FixtureRequest) -> bool:
    return PATHS[request.param]


def opened(url: str, live_writes: bool, **options: Any) -> Storage:
    return open_storage(url, live_writes=live_writes, **options)


def objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -1.0, 1.0)
    for step in range(3):
        trial.report(x * step, step)
    trial.set_user_attr("squared", x * x)
    return x * x


def test_a_study_keeps_params_values_attrs_and_states(url: str, live_writes: bool) -> None:
    storage = opened(url, live_writes)
    study = optuna.create_study(study_name="s", storage=storage.optuna)
    study.set_user_attr("made_by", "carsearch")
    study.optimize(objective, n_trials=2)
    pruned, failed = study.ask(), study.ask()
    pruned.suggest_int("n", 1, 3)
    pruned.report(0.5, 1)
    study.tell(pruned, state=TrialState.PRUNED)
    study.tell(failed, state=TrialState.FAIL)
    reread = optuna.load_study(study_name="s", storage=opened(url, live_writes).optuna)
    assert reread.user_attrs == {"made_by": "carsearch"}
    states = [t.state for t in reread.trials]
    assert states == [TrialState.COMPLETE] * 2 + [TrialState.PRUNED, TrialState.FAIL]
    for trial, first in zip(reread.trials[:2], study.trials[:2], strict=True):
        assert trial.params == first.params and trial.value == first.params["x"] ** 2
        assert trial.intermediate_values == {s: first.params["x"] * s for s in range(3)}
        assert trial.user_attrs == {"squared": first.params["x"] ** 2}
    assert reread.trials[2].params.keys() == {"n"} and reread.trials[2].intermediate_values == {
        1: 0.5
    }


def test_the_budget_refuses_a_trial_past_it(url: str, live_writes: bool) -> None:
    storage = opened(url, live_writes, trial_budget=2)
    study = optuna.create_study(study_name="s", storage=storage.optuna)
    first, _ = study.ask(), study.ask()
    with pytest.raises(BudgetReached):
        study.ask()
    study.tell(first, state=TrialState.FAIL)  # a failed trial frees its place
    study.ask()
    assert len(study.get_trials(states=(TrialState.RUNNING,))) == 2


def test_a_resumed_study_ends_at_its_exact_total(url: str, live_writes: bool) -> None:
    config = RunConfig(n_trials=2, storage=url)
    study = optuna.create_study(
        study_name="s", storage=opened(url, live_writes, trial_budget=2).optuna
    )
    run_trials(study, objective, config)
    config = config.replace(n_trials=5)
    resumed = optuna.load_study(
        study_name="s", storage=opened(url, live_writes, trial_budget=5).optuna
    )
    run_trials(resumed, objective, config)
    assert len(resumed.get_trials(states=(TrialState.COMPLETE,))) == 5
    assert len(resumed.trials) == 5


def test_a_dead_workers_trial_is_failed_and_its_params_retried(url: str, live_writes: bool) -> None:
    dead = opened(url, live_writes, heartbeat_interval=1, grace_period=1)
    study = optuna.create_study(study_name="s", storage=dead.optuna)
    trial = study.ask()
    x = trial.suggest_float("x", -1.0, 1.0)
    dead.flush(trial)  # what the objective stores before training; then the process dies
    time.sleep(2.5)  # past the grace period, without a heartbeat
    alive = opened(url, live_writes, heartbeat_interval=1, grace_period=1)
    survivor = optuna.load_study(study_name="s", storage=alive.optuna)
    survivor.optimize(objective, n_trials=1)
    trials = survivor.trials
    assert trials[0].state == TrialState.FAIL
    assert trials[1].state == TrialState.COMPLETE and trials[1].params == {"x": x}


def test_fail_running_fails_the_trials_this_process_holds(url: str, live_writes: bool) -> None:
    storage = opened(url, live_writes)
    study = optuna.create_study(study_name="s", storage=storage.optuna)
    trial = study.ask()
    trial.suggest_float("x", 0.0, 1.0)
    storage.fail_running()
    expected = TrialState.RUNNING if live_writes else TrialState.FAIL  # Optuna's own, live
    reread = optuna.load_study(study_name="s", storage=opened(url, live_writes).optuna)
    assert reread.trials[0].state == expected


# --- many processes opening one fresh storage at the same instant ---------------------------


def _open_and_search(url: str, live_writes: bool, n_trials: int, barrier: Any, out: Any) -> None:
    try:
        barrier.wait()
        storage = open_storage(url, trial_budget=n_trials, live_writes=live_writes)
        study = optuna.create_study(study_name="s", storage=storage.optuna, load_if_exists=True)
        run_trials(study, objective, RunConfig(n_trials=n_trials, storage=url))
        out.put("ok")
    except BaseException as error:  # reported to the test, which names it
        out.put(f"{type(error).__name__}: {error}")


def race(url: str, live_writes: bool, *, n_processes: int = 3, n_trials: int = 6) -> list[str]:
    """What each of ``n_processes`` said after opening ``url`` together and searching."""
    context = multiprocessing.get_context("fork")
    barrier, out = context.Barrier(n_processes), context.Queue()
    processes = [
        context.Process(target=_open_and_search, args=(url, live_writes, n_trials, barrier, out))
        for _ in range(n_processes)
    ]
    for process in processes:
        process.start()
    said = [out.get(timeout=300) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    return said


def _check_race(backend: str, live_writes: bool, folder: Path) -> None:
    with fresh_url(backend, folder) as fresh:
        assert race(fresh, live_writes) == ["ok"] * 3
        study = optuna.load_study(study_name="s", storage=open_storage(fresh).optuna)
        assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 6


@pytest.mark.parametrize("backend", BACKENDS)
def test_three_processes_open_one_fresh_storage_together(
    backend: str, live_writes: bool, tmp_path: Path
) -> None:
    for _ in range(2):
        _check_race(backend, live_writes, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_three_processes_open_one_fresh_storage_together_20_times(
    backend: str, tmp_path: Path
) -> None:
    for _ in range(20):
        _check_race(backend, False, tmp_path)


@pytest.mark.parametrize(("n_runs", "jobs"), [(3, 1), (1, 8)], ids=["3-runs", "jobs-8"])
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_runs_and_workers_started_together_on_a_fresh_storage_all_succeed(
    backend: str, n_runs: int, jobs: int, tmp_path: Path
) -> None:
    """Three ``carsearch run`` processes, or one with eight ``--jobs`` workers, open one
    fresh storage at the same instant; all succeed and the study ends at its exact total."""
    data = tmp_path / "tiny.csv"
    make_frame().to_csv(data, index=False)
    n_trials = max(4, jobs)
    run = ["run", "--data", str(data), "--study", "s", "--trials", str(n_trials), *TINY_RUN]
    with fresh_url(backend, tmp_path) as fresh:
        argv = [sys.executable, "-m", "carsearch.cli", *run, "--storage", fresh]
        argv += ["--jobs", str(jobs)]
        processes = [
            subprocess.Popen(argv, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
            for _ in range(n_runs)
        ]
        errors = [process.communicate(timeout=900)[1] for process in processes]
        assert [process.returncode for process in processes] == [0] * n_runs, errors
        study = optuna.load_study(study_name="s", storage=open_storage(fresh).optuna)
        assert len(study.get_trials(states=FINISHED)) == n_trials
