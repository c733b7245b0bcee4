"""A storage that stops taking writes mid-run: one line, finished trials kept, resumable;
and an interrupt that lands inside Optuna rather than in a trial leaves none running.

The disk fills for real: SQLite's ``max_page_count`` caps the file a few pages above its
size, on every connection the run opens, as a full disk would stop it growing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import optuna
import pytest
import sqlalchemy
from optuna.trial import TrialState
from sqlalchemy.engine import Engine

from carsearch.cli import main
from carsearch.search.trials import run_trials
from carsearch.storage.open import make_storage
from carsearch.storage.seam import trial_storage
from helpers import make_mixed_frame, tiny_config

TINY_RUN = ["--max-epochs", "3", "--patience", "2", "--refit-seeds", "1", "--device", "cpu"]


@contextmanager
def disk_full_above(path: Path, extra_pages: int) -> Iterator[None]:
    """While inside, no SQLite connection this process opens grows ``path`` by more than
    ``extra_pages`` pages."""
    with closing(sqlite3.connect(path)) as connection:
        pages = connection.execute("PRAGMA page_count").fetchone()[0]

    def cap(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages + extra_pages}")

    sqlalchemy.event.listen(Engine, "connect", cap)
    try:
        yield
    finally:
        sqlalchemy.event.remove(Engine, "connect", cap)


def stored(storage: str) -> list[tuple[int, TrialState, Any, dict[str, Any]]]:
    study = optuna.load_study(study_name="mixed", storage=storage)
    return [(t.number, t.state, t.values, t.params) for t in study.get_trials()]


@pytest.mark.parametrize("live", [False, True], ids=["buffered", "live-writes"])
def test_a_full_disk_ends_the_run_in_one_line_and_the_same_command_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], live: bool
) -> None:
    data = tmp_path / "mixed.csv"
    make_mixed_frame(200).to_csv(data, index=False)
    db = tmp_path / "s.db"
    storage = f"sqlite:///{db}"
    command = ["run", "--data", str(data), "--storage", storage, *TINY_RUN]
    command += ["--live-writes"] if live else []
    assert main([*command, "--trials", "3"]) == 0
    before = stored(storage)
    capsys.readouterr()

    with disk_full_above(db, extra_pages=1):
        status = main([*command, "--trials", "30"])

    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1
    assert err[-1].startswith(f"error: cannot write to the storage {storage}: database or disk")
    assert err[-1].endswith("free disk space, then run the same command again to continue")
    assert not any("Traceback" in line for line in err)
    after = stored(storage)
    assert after[: len(before)] == before  # finished trials intact
    assert TrialState.RUNNING not in {state for _, state, _, _ in after}
    assert len(after) < 30

    assert main([*command, "--trials", "30"]) == 0
    finished = [t for t in stored(storage) if t[1] in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 30


class InterruptedSampler(optuna.samplers.RandomSampler):
    """Ctrl-C while Optuna samples, inside ``study.ask()``: the trial row exists by then."""

    def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        raise KeyboardInterrupt


def test_an_interrupt_inside_optunas_ask_leaves_no_running_trial(tmp_path: Path) -> None:
    config = tiny_config(tmp_path)
    rdb = make_storage(config.storage, trial_budget=config.n_trials)
    study = optuna.create_study(storage=trial_storage(rdb), sampler=InterruptedSampler())

    with pytest.raises(KeyboardInterrupt):
        run_trials(study, lambda trial: 0.0, config)

    assert [
        t.state for t in optuna.load_study(study_name=study.study_name, storage=rdb).trials
    ] == [TrialState.FAIL]
