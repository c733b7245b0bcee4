"""What ``carsearch run`` tells its user, as a real process shows it: each step, the task,
the resumed counts, the summary."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers import make_frame

#: A run of seconds on the tiny table, with two refits to show their progress.
RUN = ["--max-epochs", "3", "--patience", "2", "--refit-seeds", "2", "--device", "cpu"]


@dataclass(frozen=True)
class Runs:
    """Three ``carsearch run`` processes on one study: 2 trials, resumed to 3, then again."""

    first: subprocess.CompletedProcess[str]
    resumed: subprocess.CompletedProcess[str]
    again: subprocess.CompletedProcess[str]
    folder: Path


def run_cli(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "carsearch.cli", *args]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    folder = tmp_path_factory.mktemp("cli")
    make_frame().to_csv(folder / "tiny.csv", index=False)
    run = ["run", "--data", "tiny.csv", "--storage", "sqlite:///s.db", "--study", "s", *RUN]
    first = run_cli(folder, *run, "--trials", "2")
    resumed = run_cli(folder, *run, "--trials", "3")
    again = run_cli(folder, *run, "--trials", "3")
    return Runs(first, resumed, again, folder)


def test_the_refit_and_export_steps_are_shown(runs: Runs) -> None:
    err = runs.resumed.stderr
    after_search = err[err.index("refitting 2 models") :]
    assert "refit 1/2 trained" in after_search and "refit 2/2 trained" in after_search
    assert "writing the bundle" in after_search and "best model exported to" in after_search
