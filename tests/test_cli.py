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
import pandas as pd
import pytest
import torch

from carsearch.cli import main
from carsearch.search.study import DATA_ATTR, FINISHED
from helpers import SUMMARY_KEYS, make_mixed_frame, restore_sigint, stoppable_run_args

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
        (["--trials", "0"], "error: --trials must be at least 1, got 0"),
        (["--refit-seeds", "0"], "error: --refit-seeds must be at least 1, got 0"),
        (["--metric", "rmse", "--task", "classification"], "error: --metric 'rmse' does not"),
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


@pytest.mark.skipif(torch.version.cuda is not None, reason="this torch is a CUDA build")
def test_cuda_on_a_cpu_build_of_torch_says_so_and_how_to_get_one(
    tiny_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}"
    assert main(["run", "--data", str(tiny_csv), "--storage", storage, "--device", "cuda"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        f"error: device 'cuda' asked for, but the installed torch {torch.__version__}"
    )
    assert "CPU-only build" in err and "--index-url https://download.pytorch.org/whl/cu" in err
    assert err.count("\n") == 1 and not (tmp_path / "s.db").exists()


def test_cuda_beyond_the_gpus_of_a_cuda_build_counts_them(
    tiny_csv: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(torch.version, "cuda", "12.6")  # a CUDA build cannot be installed here
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    storage = f"sqlite:///{tmp_path / 's.db'}"
    assert main(["run", "--data", str(tiny_csv), "--storage", storage, "--device", "cuda:7"]) == 1
    expected = f"error: device 'cuda:7' asked for, but this machine has {count} CUDA GPUs\n"
    assert capsys.readouterr().err == expected


def study_record(storage: str, name: str = "keep") -> list[tuple]:
    """What a stored study holds: its trials and its attributes."""
    study = optuna.load_study(study_name=name, storage=storage)
    return [study.user_attrs] + [(t.number, t.state, t.params, t.value) for t in study.trials]


@pytest.fixture
def stored(tiny_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """The storage URL of a two-trial study ``keep`` on the tiny table."""
    storage = f"sqlite:///{tmp_path / 's.db'}"
    run = ["run", "--data", str(tiny_csv), "--trials", "2", "--storage", storage]
    assert main([*run, "--study", "keep", *TINY_RUN]) == 0
    capsys.readouterr()
    return storage


BAD_RUNS = [
    ("broken.csv", b"a,b\n\xff\xfe,x\n", [], "broken.csv: not UTF-8"),
    ("tiny.csv", None, ["--numeric", "price"], "--numeric names no column 'price'"),
    ("tiny.csv", None, ["--numeric", "colour"], "column 'colour' is to be numeric, but line 2"),
    ("flat.csv", b"a,t\nx,5\ny,5\nz,5\n", ["--target", "t"], "a single class '5'"),
    ("tiny.csv", None, ["--numeric", "size", "--categorical", "size"], "in both --numeric"),
]


@pytest.mark.parametrize(("name", "content", "flags", "message"), BAD_RUNS)
def test_bad_input_is_one_line_and_leaves_the_stored_study_intact(
    stored: str,
    tiny_csv: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    content: bytes | None,
    flags: list[str],
    message: str,
) -> None:
    before = study_record(stored)
    data = tiny_csv
    if content is not None:
        data = tmp_path / name
        data.write_bytes(content)
    assert main(["run", "--data", str(data), "--study", "keep", "--storage", stored, *flags]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert study_record(stored) == before


def test_a_study_of_carsearch_01_refuses_a_column_now_read_as_numbers(
    tiny_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = pd.read_csv(tiny_csv)
    frame["size"] = frame["size"].map({"s": "1", "m": "2", "l": "3", "xl": "4"})
    frame.to_csv(tiny_csv, index=False)
    storage = f"sqlite:///{tmp_path / 's.db'}"
    run = ["run", "--data", str(tiny_csv), "--study", "old", "--storage", storage, *TINY_RUN]
    assert main([*run, "--trials", "2"]) == 0
    study = optuna.load_study(study_name="old", storage=storage)
    study.set_user_attr(DATA_ATTR, None)  # carsearch 0.1 recorded no kinds: all categorical
    before = study_record(storage, "old")
    capsys.readouterr()
    assert main([*run, "--trials", "3"]) == 1
    assert capsys.readouterr().err == (
        "error: the study was made with column 'size' categorical, this run reads it as "
        "numeric; its trials do not apply to this table: search it with --study NEW_NAME\n"
    )
    assert study_record(storage, "old") == before


def described_kinds(out: str) -> dict[str, str]:
    """Column -> kind, from ``carsearch describe``'s table."""
    rows = out.split("\n\n")[0].splitlines()[1:]
    return {line.split()[0]: line.split()[1] for line in rows}


def test_describe_shows_kinds_and_classes_and_touches_no_study(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "mixed.csv"
    make_mixed_frame(60).assign(id=[f"u{i}" for i in range(60)], one="x").to_csv(data, index=False)
    describe = ["describe", "--data", str(data), "--target", "label"]
    assert main(describe) == 0
    out = capsys.readouterr().out
    assert described_kinds(out) == {
        "income": "numeric",
        "age": "numeric",
        "city": "categorical",
        "plan": "categorical",
        "label": "target",
        "id": "dropped",
        "one": "dropped",
    }
    assert "an identifier (60 distinct values in 60 rows)" in out and "constant" in out
    assert "60 rows; target 'label', 3 classes" in out
    assert main([*describe, "--categorical", "id"]) == 0
    assert described_kinds(capsys.readouterr().out)["id"] == "categorical"
    assert not list(tmp_path.glob("*.db")) and not (tmp_path / "studies").exists()


def test_describe_says_when_numbers_in_an_odd_spelling_became_categories(tmp_path: Path) -> None:
    data = tmp_path / "odd.csv"
    frame = pd.DataFrame(
        {
            "price": ["1,234", "950", "12,500.5", ""] * 10,
            "rate": ["3,14", "2,5", "10", "0,75"] * 10,
            "size": ["1.5", "inf", "2", "-inf"] * 10,
            "colour": ["red", "blue", "green", "red"] * 10,
            "label": ["a", "b"] * 20,
        }
    )
    frame.to_csv(data, index=False)
    done = subprocess.run(
        carsearch("describe", "--data", str(data)), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    notes = {line.split()[0]: line for line in done.stdout.split("\n\n")[0].splitlines()[1:]}
    assert "thousands separators (e.g. '1,234')" in notes["price"]
    assert "comma decimals (e.g. '3,14')" in notes["rate"]
    assert "infinite values (e.g. 'inf')" in notes["size"]
    assert "looks like numbers" not in notes["colour"]
    warnings = done.stderr.splitlines()
    assert len(warnings) == 3
    assert all("is categorical, but looks like numbers" in line for line in warnings)
    assert [w.split("column ")[1].split()[0] for w in warnings] == ["'price'", "'rate'", "'size'"]


def test_sigint_keeps_finished_trials_and_a_second_run_continues(
    tiny_csv: Path, tmp_path: Path
) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}"
    args = stoppable_run_args(tiny_csv, storage, "cut")
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
