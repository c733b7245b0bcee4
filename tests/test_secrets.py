"""A password in the storage URL is shown nowhere and stored nowhere.

Real processes against the real PostgreSQL server (trust auth, so any password connects):
``run``, ``best``, ``best --json``, ``report``, ``export``, a resumed ``run`` and the
dashboard's banner. Their output, the files they wrote and every database row of the study
must not hold the password. MariaDB is left out: its root user has no password, so one in
the URL is refused.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from sqlalchemy.engine import make_url

from carsearch.cli import main
from carsearch.search.study import CONFIG_ATTR, config_record
from carsearch.urls import MASK, shown_url
from helpers import make_frame, restore_sigint

PASSWORD = "S3cr3tPw"
QUICK = ["--max-epochs", "2", "--patience", "2", "--refit-seeds", "1", "--device", "cpu"]


def carsearch(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """A carsearch command as users run it; it must succeed."""
    done = subprocess.run(
        [sys.executable, "-m", "carsearch.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
    )
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture
def secret_url(postgres_url: str) -> str:
    """The test server's URL with a password the server does not check."""
    url = make_url(postgres_url).set(password=PASSWORD).render_as_string(hide_password=False)
    engine = sqlalchemy.create_engine(url)
    try:
        engine.connect().close()
    except sqlalchemy.exc.OperationalError as error:
        pytest.skip(f"the PostgreSQL server refuses a password: {error}")
    finally:
        engine.dispose()
    return url


@pytest.fixture
def study_name(secret_url: str) -> Iterator[str]:
    """A study name of this test alone; the study is deleted after."""
    name = f"secrets_{uuid.uuid4().hex[:12]}"
    yield name
    try:
        optuna.delete_study(study_name=name, storage=secret_url)
    except KeyError:
        pass


def study_rows(url: str, name: str) -> str:
    """Every row of every table that belongs to study ``name`` (and the tables of no study),
    as text."""
    engine = sqlalchemy.create_engine(url)
    tables = sqlalchemy.MetaData()
    try:
        with engine.connect() as connection:
            tables.reflect(connection)
            studies = tables.tables["studies"]
            study_id = connection.execute(
                sqlalchemy.select(studies.c.study_id).where(studies.c.study_name == name)
            ).scalar_one()
            trial_ids = sqlalchemy.select(tables.tables["trials"].c.trial_id).where(
                tables.tables["trials"].c.study_id == study_id
            )
            rows = []
            for table in tables.sorted_tables:
                query = sqlalchemy.select(table)
                if "study_id" in table.c:
                    query = query.where(table.c.study_id == study_id)
                elif "trial_id" in table.c:
                    query = query.where(table.c.trial_id.in_(trial_ids))
                rows += [f"{table.name}: {tuple(row)}" for row in connection.execute(query)]
    finally:
        engine.dispose()
    return "\n".join(rows)


def written_files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by its relative path, with its content."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.mark.slow
def test_a_password_in_the_storage_url_is_printed_and_stored_nowhere(
    tmp_path: Path, secret_url: str, study_name: str
) -> None:
    make_frame().to_csv(tmp_path / "tiny.csv", index=False)
    storage = ["--storage", secret_url]
    study = [*storage, "--study", study_name]
    run = ["run", "--data", "tiny.csv", *study, *QUICK]
    outputs = {"run": carsearch(*run, "--trials", "2", cwd=tmp_path)}
    outputs["best"] = carsearch("best", *study, cwd=tmp_path)
    outputs["best --json"] = carsearch("best", *study, "--json", cwd=tmp_path)
    outputs["report"] = carsearch("report", *study, "--out", "report.html", cwd=tmp_path)
    outputs["export"] = carsearch("export", *study, "--out", "exported", "--json", cwd=tmp_path)
    # A study an earlier carsearch made kept the password in its record: a resumed run
    # (which must still pass the resume checks) stores it masked.
    stored = optuna.load_study(study_name=study_name, storage=secret_url)
    stored.set_user_attr(CONFIG_ATTR, {**stored.user_attrs[CONFIG_ATTR], "storage": secret_url})
    outputs["resumed run"] = carsearch("--debug", *run, "--trials", "3", cwd=tmp_path)

    for command, done in outputs.items():
        assert PASSWORD not in done.stdout + done.stderr, command
    shown = json.loads(outputs["best --json"].stdout)["storage"]
    assert shown == shown_url(secret_url) == secret_url.replace(PASSWORD, MASK)
    assert json.loads(outputs["export"].stdout)["storage"] == shown
    assert f"({shown})" in outputs["best"].stdout
    assert shown in outputs["run"].stderr  # the run's first line names where it stores
    resumed = optuna.load_study(study_name=study_name, storage=secret_url)
    assert len(resumed.trials) == 3
    assert resumed.user_attrs[CONFIG_ATTR]["storage"] == shown
    rows = study_rows(secret_url, study_name)
    assert CONFIG_ATTR in rows and study_name in rows  # the study's rows were read
    assert PASSWORD not in rows
    files = written_files(tmp_path)
    assert {"report.html", "exported/model.json"} <= set(files)
    assert any(name.startswith("studies/artifacts/") for name in files)
    leaked = [name for name, content in files.items() if PASSWORD.encode() in content]
    assert not leaked


def test_the_dashboard_banner_hides_the_password(secret_url: str, tmp_path: Path) -> None:
    dashboard = ["dashboard", "--storage", secret_url, "--port", "0"]
    process = subprocess.Popen(
        [sys.executable, "-m", "carsearch.cli", *dashboard],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        preexec_fn=restore_sigint,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline() + process.stdout.readline()
    finally:
        process.kill()
        _, errors = process.communicate(timeout=60)
    shown = secret_url.replace(PASSWORD, MASK)
    assert banner.startswith(f"optuna-dashboard on {shown}: open http://")
    assert PASSWORD not in banner + errors


def test_an_unparsable_url_is_refused_without_its_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["best", "--storage", f"postgresql://ann:{PASSWORD}@db:port/cars"]) == 1
    printed = capsys.readouterr()
    assert "not a storage URL: 'postgresql://ann:***@db:port/cars'" in printed.err
    assert PASSWORD not in printed.out + printed.err


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://ann:pw@db.example.com/cars", "postgresql://ann:***@db.example.com/cars"),
        (
            "postgresql+psycopg2://postgres:S3cr3tPw@127.0.0.1:5432/test",
            "postgresql+psycopg2://postgres:***@127.0.0.1:5432/test",
        ),
        ("mysql+pymysql://root@127.0.0.1:3306/test", "mysql+pymysql://root@127.0.0.1:3306/test"),
        ("postgresql://db.example.com:5432/cars", "postgresql://db.example.com:5432/cars"),
        ("sqlite:///studies/carsearch.db", "sqlite:///studies/carsearch.db"),
        ("sqlite://", "sqlite://"),
        ("postgresql://ann:p%40ss@db/cars", "postgresql://ann:***@db/cars"),
        ("postgresql://ann:p@ss@db/cars", "postgresql://ann:***@db/cars"),  # an @ unquoted
        ("postgresql://ann:pw@db:port/cars", "postgresql://ann:***@db:port/cars"),  # no parse
        ("ann:pw@db/cars", "ann:***@db/cars"),  # no scheme: no parse either
        ("postgresql://ann@db:port/cars", "postgresql://ann@db:port/cars"),  # no password
        ("postgresql://ann@db/cars?password=pw&x=1", "postgresql://ann@db/cars?password=***&x=1"),
        ("not a URL", "not a URL"),
    ],
)
def test_shown_url_masks_the_password_and_keeps_the_rest(url: str, shown: str) -> None:
    assert shown_url(url) == shown


def test_the_stored_config_record_holds_the_url_masked() -> None:
    record = {"storage": f"postgresql://ann:{PASSWORD}@db/cars", "seed": 3}
    assert config_record(record) == {"storage": "postgresql://ann:***@db/cars", "seed": 3}
    assert config_record({"seed": 3}) == {"seed": 3}
