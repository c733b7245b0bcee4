"""`carsearch dashboard`: a real server process, read back over real HTTP."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest

from carsearch.bundle.artifacts import bundle_path
from carsearch.cli import main
from helpers import restore_sigint

TINY_RUN = ["--max-epochs", "2", "--patience", "2", "--refit-seeds", "1", "--device", "cpu"]
N_TRIALS = 3


@pytest.fixture
def storage(tiny_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """A SQLite file holding one study (``tiny``) of a few finished trials."""
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    run = ["run", "--data", str(tiny_csv), "--trials", str(N_TRIALS), "--storage", url]
    assert main([*run, *TINY_RUN]) == 0
    out = capsys.readouterr().out
    # The run's own summary tells the user how to look at the study.
    assert f"carsearch dashboard --storage {url}" in out
    assert f"carsearch report --study tiny --storage {url}" in out
    return url


@pytest.fixture
def server(storage: str) -> Iterator[str]:
    """``carsearch dashboard`` on a free port, as a real process; yields its address."""
    command = [sys.executable, "-m", "carsearch.cli", "dashboard", "--storage", storage]
    process = subprocess.Popen(
        [*command, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=restore_sigint,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        line = _read_line(process, timeout=60)
        match = re.search(r"open (http://127\.0\.0\.1:\d+)/dashboard/", line)
        assert match, f"no address in {line!r}"
        yield match.group(1)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            assert process.wait(timeout=20) == 0  # Ctrl-C is the normal way to stop it
        finally:
            if process.poll() is None:
                process.kill()


def _read_line(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    if not ready:
        raise AssertionError(f"carsearch dashboard said nothing in {timeout} s")
    return process.stdout.readline()


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200
        return json.loads(response.read())


def test_dashboard_serves_the_study_and_its_trials(server: str, storage: str) -> None:
    summaries = get_json(f"{server}/api/studies")["study_summaries"]
    assert [summary["study_name"] for summary in summaries] == ["tiny"]
    detail = get_json(f"{server}/api/studies/{summaries[0]['study_id']}")

    study = optuna.load_study(study_name="tiny", storage=storage)
    trials = study.get_trials()
    assert detail["name"] == "tiny" and detail["directions"] == ["minimize"]
    assert [t["number"] for t in detail["trials"]] == [t.number for t in trials]
    assert [t["values"] for t in detail["trials"]] == [t.values for t in trials]
    served = {p["name"]: p for p in detail["trials"][0]["params"]}
    assert set(served) == set(trials[0].params)
    assert len(detail["trials"]) == N_TRIALS
    assert detail["best_trials"][0]["number"] == study.best_trial.number
    # `run` exported its bundle as study artifacts; the dashboard serves them from the store.
    artifacts = {a["filename"]: a["artifact_id"] for a in detail["artifacts"]}
    assert "model.json" in artifacts
    study_id = summaries[0]["study_id"]
    served_manifest = get_json(f"{server}/artifacts/{study_id}/{artifacts['model.json']}")
    bundle = bundle_path(study)
    assert bundle is not None
    assert served_manifest == json.loads((bundle / "model.json").read_text())
    # The page itself is served too, not only its API.
    with urllib.request.urlopen(f"{server}/dashboard/", timeout=30) as response:
        assert b"<html" in response.read().lower()


def test_dashboard_refuses_a_missing_storage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nothing.db"
    assert main(["dashboard", "--storage", f"sqlite:///{missing}", "--port", "0"]) == 1
    assert f"no study storage at {missing}" in capsys.readouterr().err
    assert not missing.exists()
