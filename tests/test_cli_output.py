"""What ``carsearch run`` tells its user, as a real process shows it: each step, the task,
the resumed counts, the summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest

from helpers import make_frame

#: A run of seconds on the tiny table's study ``s``, with two refits to show their progress.
RUN_S = ["run", "--data", "tiny.csv", "--storage", "sqlite:///s.db", "--study", "s"]
RUN_S += ["--max-epochs", "3", "--patience", "2", "--refit-seeds", "2", "--device", "cpu"]


@dataclass(frozen=True)
class Runs:
    """Three ``carsearch run`` processes on one study: 2 trials, resumed to 3, then again."""

    first: subprocess.CompletedProcess[str]
    resumed: subprocess.CompletedProcess[str]
    again: subprocess.CompletedProcess[str]
    folder: Path


def run_cli(folder: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "carsearch.cli", *args]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, env=env)
    assert done.returncode == 0 or not ok, done.stderr
    return done


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    folder = tmp_path_factory.mktemp("cli")
    make_frame().to_csv(folder / "tiny.csv", index=False)
    first = run_cli(folder, *RUN_S, "--trials", "2")
    resumed = run_cli(folder, *RUN_S, "--trials", "3")
    again = run_cli(folder, *RUN_S, "--trials", "3")
    return Runs(first, resumed, again, folder)


def test_the_refit_and_export_steps_are_shown(runs: Runs) -> None:
    err = runs.first.stderr
    after_search = err[err.index("refitting 2 models") :]
    assert "refit 1/2 trained" in after_search and "refit 2/2 trained" in after_search
    assert "writing the bundle" in after_search and "best model exported to" in after_search


def test_the_task_and_its_rule_are_shown_before_the_search(runs: Runs) -> None:
    err = runs.first.stderr
    task = "task classification: target 'label' has 3 classes (--task auto: text, or whole"
    assert task in err and err.index(task) < err.index("refitting")
    assert "searched for the best validation log_loss" in err
    assert "task       classification" in runs.first.stdout


def test_the_summary_shows_short_floats_and_json_keeps_them_all(runs: Runs) -> None:
    shown = dict(
        line.strip().split(" = ") for line in runs.first.stdout.splitlines() if " = " in line
    )
    floats = {key: text for key, text in shown.items() if "." in text or "e-" in text}
    assert floats, runs.first.stdout
    assert all(text == f"{float(text):.4g}" for text in floats.values()), floats
    best = json.loads(run_cli(runs.folder, "best", "--storage", "sqlite:///s.db", "--json").stdout)
    assert best["task"] == "classification"
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{runs.folder / 's.db'}")
    assert best["best_params"] == study.best_params  # every digit


def test_a_resumed_run_says_what_is_stored_and_what_runs(runs: Runs) -> None:
    assert "study 's' in sqlite:///s.db: 0 trials stored, 2 to run for 2" in runs.first.stderr
    assert "2 trials stored, 1 to run for 3" in runs.resumed.stderr
    assert "3 trials stored, 0 to run for 3" in runs.again.stderr


def test_a_rerun_keeps_an_up_to_date_bundle_and_refit_forces_one(runs: Runs) -> None:
    assert "refitting" not in runs.again.stderr
    assert "is of best trial" in runs.again.stderr and "kept (--refit refits)" in runs.again.stderr
    kept = runs.again.stdout
    assert kept.split("wall time")[0] == runs.resumed.stdout.split("wall time")[0]
    assert kept.split("test ")[1] == runs.resumed.stdout.split("test ")[1], "the bundle's scores"
    bundle = runs.folder / "s" / "s" / "best" / "model.json"  # <db stem>/<study>/best
    before = bundle.stat().st_mtime_ns
    forced = run_cli(runs.folder, *RUN_S, "--trials", "3", "--refit")
    assert "refitting 2 models" in forced.stderr
    assert bundle.stat().st_mtime_ns != before


def test_report_prints_its_result_line_once(runs: Runs) -> None:
    done = run_cli(runs.folder, "report", "--storage", "sqlite:///s.db", "--out", "r.html")
    assert done.stdout == "report of study 's' written to r.html\n"
    assert "written to" not in done.stderr
