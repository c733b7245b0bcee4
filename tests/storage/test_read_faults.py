"""Read commands end a storage fault as ``run`` does: one ``error:`` line, no traceback.

``best``, ``best --json``, ``report`` and ``export`` run as real processes on a real SQLite
study whose write lock another connection holds (a 1 s busy timeout instead of 60 s), or
whose data pages are overwritten.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest

from carsearch.cli import main
from carsearch.storage.sqlite import BUSY_TIMEOUT_VARIABLE
from helpers import make_frame

TINY = ["--max-epochs", "2", "--patience", "2", "--refit-seeds", "1", "--device", "cpu"]
PAGE = 4096


@pytest.fixture(scope="module")
def study_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file holding a finished two-trial study ``s``, its WAL folded in."""
    folder = tmp_path_factory.mktemp("read-faults")
    data = folder / "tiny.csv"
    make_frame().to_csv(data, index=False)
    path = folder / "s.db"
    run = ["run", "--data", str(data), "--storage", f"sqlite:///{path}", "--study", "s"]
    assert main([*run, "--trials", "2", *TINY]) == 0
    with closing(sqlite3.connect(path)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


@contextmanager
def write_locked(path: Path) -> Iterator[None]:
    """Another connection holds ``path``'s write lock inside."""
    with closing(sqlite3.connect(path, isolation_level=None)) as connection:
        connection.execute("BEGIN IMMEDIATE")
        yield
        connection.execute("ROLLBACK")


@contextmanager
def corrupted(path: Path) -> Iterator[None]:
    """Every page after the schema page of ``path`` overwritten with garbage."""
    size = path.stat().st_size
    with path.open("r+b") as file:
        file.seek(PAGE)
        file.write(b"\xa5" * (size - PAGE))
    yield


FAULTS = {
    "write lock held": write_locked,
    "corrupted pages": corrupted,
}
COMMANDS = {
    "best": ["best"],
    "best --json": ["best", "--json"],
    "report": ["report", "--out", "{folder}/report.html"],
    "export": ["export", "--out", "{folder}/bundle"],
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_read_command_ends_a_storage_fault_in_one_error_line(
    fault: str, command: str, study_file: Path, tmp_path: Path
) -> None:
    path = tmp_path / "s.db"
    shutil.copy(study_file, path)
    words = [word.format(folder=tmp_path) for word in COMMANDS[command]]
    argv = [sys.executable, "-m", "carsearch.cli", *words, "--storage", f"sqlite:///{path}"]
    env = {**os.environ, BUSY_TIMEOUT_VARIABLE: "1"}
    with FAULTS[fault](path):
        done = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
    lines = done.stderr.strip().splitlines()
    assert done.returncode != 0
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr and "StorageInternalError" not in done.stderr
    assert "locked" in lines[0] or "malformed" in lines[0]
