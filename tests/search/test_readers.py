"""Readers of a SQLite study that ``run --jobs 2`` is writing: no lock errors, consistent views.

``best``, ``report`` and ``export`` run as real processes, and the dashboard serves over real
HTTP, again and again while two workers write trials. Every read must succeed, and what it
saw must agree with the finished study: a finished trial never changes, so the best value
each read reported is that trial's final value, and best values only improve over time.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from carsearch.cli import main
from helpers import make_mixed_frame, restore_sigint

QUICK = ["--max-epochs", "3", "--patience", "2", "--refit-seeds", "1", "--device", "cpu"]


def carsearch(*args: str) -> list[str]:
    return [sys.executable, "-m", "carsearch.cli", *args]


def read(*args: str) -> str:
    """Run a reading command; it must succeed without a word on stderr about locks."""
    done = subprocess.run(carsearch(*args), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "locked" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    return done.stdout


@pytest.fixture
def dashboard(storage: str) -> Iterator[str]:
    process = subprocess.Popen(
        carsearch("dashboard", "--storage", storage, "--port", "0"),
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=restore_sigint,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        match = re.search(r"open (http://127\.0\.0\.1:\d+)/dashboard/", process.stdout.readline())
        assert match
        yield match.group(1)
    finally:
        process.kill()
        process.wait()


@pytest.fixture
def storage(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'studies.db'}"


def served_trials(dashboard: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{dashboard}/api/studies", timeout=60) as response:
        study_id = json.loads(response.read())["study_summaries"][0]["study_id"]
    with urllib.request.urlopen(f"{dashboard}/api/studies/{study_id}", timeout=60) as response:
        trials: list[dict[str, Any]] = json.loads(response.read())["trials"]
    return trials


def while_running(writer: subprocess.Popen[str], read_once: Callable[[], Any]) -> list[Any]:
    """``read_once()`` again and again until ``writer`` ends; what each call returned."""
    results = []
    while writer.poll() is None:
        results.append(read_once())
    return results


@pytest.mark.slow
def test_best_report_export_and_dashboard_read_a_study_two_workers_write(
    tmp_path: Path, storage: str, request: pytest.FixtureRequest
) -> None:
    data = tmp_path / "mixed.csv"
    make_mixed_frame(400).to_csv(data, index=False)
    run = ["run", "--data", str(data), "--storage", storage, "--study", "busy", *QUICK]
    assert main([*run, "--trials", "3"]) == 0  # something to read from the start
    url = request.getfixturevalue("dashboard")
    writer = subprocess.Popen(
        carsearch(*run, "--trials", "60", "--jobs", "2"), stderr=subprocess.PIPE, text=True
    )
    readers = {
        "best": lambda: json.loads(read("best", "--storage", storage, "--json")),
        "report": lambda: read("report", "--storage", storage, "--out", str(tmp_path / "r.html")),
        "export": lambda: read("export", "--storage", storage, "--out", str(tmp_path / "out")),
        "dashboard": lambda: served_trials(url),
    }
    try:
        with ThreadPoolExecutor(len(readers)) as pool:
            running = {name: pool.submit(while_running, writer, r) for name, r in readers.items()}
            reads = {name: future.result() for name, future in running.items()}
        _, err = writer.communicate(timeout=600)
    finally:
        if writer.poll() is None:
            writer.kill()
    assert writer.returncode == 0, err
    assert "locked" not in err

    final = optuna.load_study(study_name="busy", storage=storage)
    finished = {t.number: t for t in final.trials if t.state.is_finished()}
    assert len(final.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))) == 60
    assert all(len(results) >= 2 for results in reads.values()), "each read while it wrote"
    best_values = [(best["best_trial"], best["best_value"]) for best in reads["best"]]
    for number, value in best_values:
        assert finished[number].value == value  # a finished trial never changes
    values = [value for _, value in best_values]
    assert values == sorted(values, reverse=True)  # log loss: a later best is never worse
    assert min(values) >= final.best_value
    served = [t for trials in reads["dashboard"] for t in trials if t["state"] == "Complete"]
    assert len({t["number"] for t in served}) > 3  # trials the workers added, seen live
    for trial in served:
        assert finished[trial["number"]].values == trial["values"]
