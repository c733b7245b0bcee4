"""The carsearch command line, run as users run it: a real process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from carsearch.cli import main
from carsearch.search.study import FINISHED
from helpers import SUMMARY_KEYS, restore_sigint

TINY_RUN = ["--max-epochs", "3", "--patience", "2", "--refit-seeds", "1", "--device", "cpu"]


def carsearch(*args: str) -> list[str]:
    return [sys.executable, "-m", "carsearch.cli", *args]


def test_json_summary_has_the_documented_keys(
    tiny_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}"
    status = main(
        ["run", "--data", str(tiny_csv), "--trials", "2", "--storage", storage, "--json", *TINY_RUN]
    )
    assert status == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary.keys() >= SUMMARY_KEYS
    assert set(summary["test"]) >= {"accuracy", "macro_f1"}
    assert summary["storage"] == storage and summary["n_trials"] == 2


def test_text_summary(tiny_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}"
    assert (
        main(["run", "--data", str(tiny_csv), "--trials", "2", "--storage", storage, *TINY_RUN])
        == 0
    )
    out = capsys.readouterr().out
    assert "trials     2:" in out and "test       accuracy" in out and "device     cpu" in out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--data", "missing.csv"], "error: missing.csv: no such file"),
        (["--device", "cuda:7"], "error: device 'cuda:7' asked for"),
        (["--trials", "0"], "error: n_trials must be at least 1, got 0"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(
    args: list[str],
    expected: str,
    tiny_csv: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if "--data" not in args:
        args = ["--data", str(tiny_csv), *args]
    status = main(["run", "--storage", f"sqlite:///{tmp_path / 's.db'}", *args])
    err = capsys.readouterr().err
    assert status == 1
    assert err.startswith(expected) and err.count("\n") == 1, err
    assert not (tmp_path / "s.db").exists()  # each is refused before the study is opened


def test_bad_csv_leaves_the_stored_study_intact(
    tiny_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}"
    assert (
        main(
            [
                "run",
                "--data",
                str(tiny_csv),
                "--trials",
                "2",
                "--storage",
                storage,
                "--study",
                "keep",
                *TINY_RUN,
            ]
        )
        == 0
    )
    before = [
        (t.number, t.params, t.value)
        for t in optuna.load_study(study_name="keep", storage=storage).trials
    ]
    broken = tmp_path / "broken.csv"
    broken.write_bytes(b"a,b\n\xff\xfe,x\n")
    capsys.readouterr()
    assert main(["run", "--data", str(broken), "--study", "keep", "--storage", storage]) == 1
    assert "broken.csv: not UTF-8" in capsys.readouterr().err
    after = [
        (t.number, t.params, t.value)
        for t in optuna.load_study(study_name="keep", storage=storage).trials
    ]
    assert after == before


def test_sigint_keeps_finished_trials_and_a_second_run_continues(
    tiny_csv: Path, tmp_path: Path
) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}"
    args = [
        "run",
        "--data",
        str(tiny_csv),
        "--storage",
        storage,
        "--study",
        "cut",
        "--max-epochs",
        "40",
        "--patience",
        "40",
        "--pruner",
        "none",
        "--refit-seeds",
        "1",
        "--device",
        "cpu",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        carsearch(*args, "--trials", "500"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=restore_sigint,
    )
    finished = wait_for_finished(storage, "cut", at_least=2, process=process)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "interrupted: finished trials are stored" in err and "Traceback" not in err

    study = optuna.load_study(study_name="cut", storage=storage)
    kept = {t.number: (t.params, t.value) for t in study.get_trials(states=FINISHED)}
    assert len(kept) >= finished
    target = len(kept) + 2
    done = subprocess.run(
        carsearch(*args, "--trials", str(target), "--json"),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    study = optuna.load_study(study_name="cut", storage=storage)
    now = {t.number: (t.params, t.value) for t in study.get_trials(states=FINISHED)}
    assert len(now) == target
    assert all(now[number] == record for number, record in kept.items())


def wait_for_finished(
    storage: str, name: str, *, at_least: int, process: subprocess.Popen[str]
) -> int:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            study = optuna.load_study(study_name=name, storage=storage)
            n_finished = len(study.get_trials(states=FINISHED))
        except KeyError:
            n_finished = 0
        if n_finished >= at_least:
            return n_finished
        time.sleep(0.2)
    raise AssertionError(f"fewer than {at_least} trials finished in time")
