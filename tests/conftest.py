"""Shared fixtures: small generated tables, the shared Car Evaluation copy, fast configs."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from carsearch import RunConfig
from carsearch.training.device import seed_everything
from helpers import make_frame, tiny_config

REPO = Path(__file__).resolve().parents[1]
SHARED_CAR = REPO.parent / "shared" / "data" / "car_evaluation.csv"


#: What the test run itself may leave in the checkout: the tools' caches (each ignores itself).
_SCRATCH = (
    "__pycache__/",
    ".pytest_cache/",
    ".hypothesis/",
    ".ruff_cache/",
    ".mypy_cache/",
    ".egg-info/",
)


def _repo_state() -> set[str] | None:
    """``git status --porcelain --ignored`` of the checkout, every file but the virtual
    environments' and caches; ``None`` outside a git checkout of its own (an unpacked sdist)."""
    top = _git("rev-parse", "--show-toplevel")
    if top is None or Path(top.strip()).resolve() != REPO:
        return None
    # Ignored files too (studies/* is ignored), one line per file (-uall).
    status = _git("status", "--porcelain", "--ignored", "-uall", "--", ".", ":(exclude).venv*")
    if status is None:
        return None
    # New files only: a tracked file edited while the tests run is no test's doing.
    lines = [line for line in status.splitlines() if line[:2] in ("??", "!!")]
    return {line for line in lines if not any(scratch in line for scratch in _SCRATCH)}


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


@pytest.fixture(scope="session", autouse=True)
def _checkout_left_unchanged() -> Iterator[None]:
    """Tests write only under tmp_path: the session fails if it left new files in the
    checkout (ignored ones too, such as ``studies/*``)."""
    before = _repo_state()
    yield
    after = _repo_state()
    if before is None or after is None:
        return
    if changed := sorted(after ^ before):
        pytest.fail(
            "the tests left files in the checkout (write under tmp_path instead): "
            + ", ".join(changed),
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def _seeded_single_thread() -> None:
    """Every test starts from the same seed with one torch thread (2-core machines)."""
    torch.set_num_threads(1)
    seed_everything(0)


@pytest.fixture
def tiny_csv(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.csv"
    make_frame().to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def car_csv() -> Path:
    """The shared Car Evaluation copy (CI sets CARSEARCH_DATA_HOME to its folder)."""
    home = os.environ.get("CARSEARCH_DATA_HOME")
    path = Path(home) / "car_evaluation.csv" if home else SHARED_CAR
    if not path.is_file():
        pytest.skip(
            f"no Car Evaluation copy at {path}: set CARSEARCH_DATA_HOME to the folder of "
            "car_evaluation.csv (see data/README.md)"
        )
    return path


@pytest.fixture
def fast_config(tmp_path: Path, tiny_csv: Path) -> RunConfig:
    """A few-second run on the tiny table, stored in a SQLite file under tmp_path."""
    return tiny_config(tmp_path)


#: The PostgreSQL server the multi-worker tests use (CI runs one); skipped when unreachable.
POSTGRES_URL = os.environ.get(
    "CARSEARCH_TEST_POSTGRES", "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
)


@pytest.fixture
def postgres_url() -> str:
    """The test server's URL, after checking it answers (else the test is skipped)."""
    psycopg2 = pytest.importorskip("psycopg2")
    from sqlalchemy.engine import make_url

    url = make_url(POSTGRES_URL)
    try:
        psycopg2.connect(
            host=url.host,
            port=url.port,
            user=url.username,
            password=url.password,
            dbname=url.database,
            connect_timeout=3,
        ).close()
    except psycopg2.OperationalError as error:
        pytest.skip(f"no PostgreSQL at {url.render_as_string()}: {error}")
    return POSTGRES_URL
