"""carsearch.storage: SQLite shared by processes, the trial budget, and old Optuna schemas."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from optuna.trial import TrialState
from sqlalchemy.engine import make_url

import carsearch
from carsearch import RunConfig, StudyError
from carsearch.storage.open import make_storage
from carsearch.storage.rdb import BudgetReached
from carsearch.storage.urls import is_server

OLD_SCHEMA = "v3.0.0.d"  # what Optuna 3.0 and 3.1 wrote; Optuna 3.2 added one index


def test_sqlite_file_is_in_wal_mode_and_waits_for_its_lock(tmp_path: Path) -> None:
    path = tmp_path / "deeper" / "studies.db"
    storage = make_storage(f"sqlite:///{path}")
    assert path.is_file()
    with storage.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 60_000
    assert storage.get_heartbeat_interval() is not None


def test_is_server() -> None:
    assert is_server("postgresql://u@host/db")
    assert not is_server("sqlite:///studies/carsearch.db")


def test_budget_counts_finished_and_running_trials(tmp_path: Path) -> None:
    storage = make_storage(f"sqlite:///{tmp_path / 's.db'}", trial_budget=2)
    study = optuna.create_study(storage=storage)
    study.enqueue_trial({"x": 0.5})
    with pytest.warns(UserWarning, match="Heartbeat"):  # Optuna's note on ask() + heartbeat
        first, second = study.ask(), study.ask()
        study.enqueue_trial({"x": 0.25})
        with pytest.raises(BudgetReached, match="2 of 2"):
            study.ask()
        study.tell(first, 1.0)
        with pytest.raises(BudgetReached):
            study.ask()  # a finished trial still uses its place; the queued one waits
        study.tell(second, state=TrialState.FAIL)
        third = study.ask()  # a failed one frees its place: the queue goes first
    assert third.suggest_float("x", 0, 1) == 0.25
    assert [t.state for t in study.trials] == [
        TrialState.COMPLETE,
        TrialState.FAIL,
        TrialState.RUNNING,
    ]


HAMMER = """
import sys, optuna
from carsearch.config import RunConfig
from carsearch.storage.open import make_storage
from carsearch.search.workers import run_trials

url, budget = sys.argv[1], int(sys.argv[2])
optuna.logging.set_verbosity(optuna.logging.ERROR)

def objective(trial):
    x = trial.suggest_float("x", 0, 1)
    for step in range(3):
        trial.report(x, step)
        trial.should_prune()
    return x

study = optuna.load_study(study_name="s", storage=make_storage(url, trial_budget=budget))
run_trials(study, objective, RunConfig(n_trials=budget, storage=url))
"""


@pytest.mark.slow
def test_racing_processes_on_sqlite_hold_exactly_the_budget(tmp_path: Path) -> None:
    """Trials that take no time make the workers race for the last places."""
    url, budget = f"sqlite:///{tmp_path / 'race.db'}", 40
    optuna.create_study(study_name="s", storage=make_storage(url))
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", HAMMER, url, str(budget)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    errors = [worker.communicate(timeout=300)[1] for worker in workers]
    assert [worker.returncode for worker in workers] == [0] * 4, errors
    assert not any("locked" in error for error in errors), errors
    states = [t.state for t in optuna.load_study(study_name="s", storage=url).trials]
    assert states == [TrialState.COMPLETE] * budget


def make_old(path: Path, revision: str = OLD_SCHEMA, library: str = "3.1.1") -> None:
    """Label a SQLite study file as written by an older Optuna.

    The schemas of ``v3.0.0.d`` and this Optuna's head differ by one index, which the
    upgrade adds under another name, so the relabelled file is a faithful old one.
    """
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE alembic_version SET version_num = ?", (revision,))
        connection.execute("UPDATE version_info SET library_version = ?", (library,))
    connection.close()


def alembic_revision(path: Path) -> str:
    with sqlite3.connect(path) as connection:
        (revision,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    connection.close()
    return str(revision)


def trial_record(study: optuna.Study) -> list[tuple]:
    return [(t.number, t.state, t.params, t.value, t.datetime_complete) for t in study.trials]


def test_a_study_from_an_older_optuna_is_upgraded_after_a_backup(
    fast_config: RunConfig, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "studies.db"
    before = trial_record(carsearch.run(fast_config.replace(n_trials=2)).study)
    make_old(path)
    with pytest.raises(RuntimeError, match="optuna storage upgrade"):
        optuna.storages.RDBStorage(f"sqlite:///{path}")  # what plain Optuna does with it
    result = carsearch.run(fast_config.replace(n_trials=3))
    assert trial_record(result.study)[:2] == before
    assert len(result.study.trials) == 3
    head = make_storage(f"sqlite:///{path}").get_head_version()
    assert alembic_revision(path) == head
    backup = tmp_path / f"studies.db.{OLD_SCHEMA}.bak"
    assert alembic_revision(backup) == OLD_SCHEMA
    assert "upgraded" in caplog.text and str(backup) in caplog.text


def test_a_schema_newer_than_this_optuna_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    make_storage(f"sqlite:///{path}")
    make_old(path, revision="v9.0.0.a", library="9.0.0")
    with pytest.raises(StudyError, match=r"schema v9\.0\.0\.a, newer .*pip install -U optuna"):
        make_storage(f"sqlite:///{path}")
    assert alembic_revision(path) == "v9.0.0.a"


@pytest.fixture
def scratch_database(postgres_url: str) -> Iterator[str]:
    """A PostgreSQL database of its own (the shared one's schema must not be touched)."""
    name = f"carsearch_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
    admin.dispose()


def test_an_old_server_schema_is_left_alone_with_the_upgrade_command(
    scratch_database: str,
) -> None:
    url = scratch_database
    study = optuna.create_study(study_name="old", storage=make_storage(url))
    study.add_trial(optuna.trial.create_trial(value=1.0))
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"UPDATE alembic_version SET version_num = '{OLD_SCHEMA}'")
    with pytest.raises(StudyError, match="optuna storage upgrade --storage") as refused:
        make_storage(url)
    command = str(refused.value).split("upgrade it once with: ")[1]
    optuna_cli = str(Path(sys.executable).with_name("optuna"))
    subprocess.run(command.replace("optuna", optuna_cli, 1), shell=True, check=True)
    upgraded = optuna.load_study(study_name="old", storage=make_storage(url))
    assert [t.value for t in upgraded.trials] == [1.0]
    engine.dispose()
