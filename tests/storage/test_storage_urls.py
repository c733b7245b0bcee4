"""Storage URLs as users type them: the drivers they need, and one-line errors when opening fails.

Real servers: PostgreSQL (trust auth, user ``postgres``) and MariaDB (user ``root``, no
password) on 127.0.0.1, each with a database ``test``; the tests that need one skip without
it. A fresh database is made per test where one must start empty, and dropped after.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

from carsearch.bundle.artifacts import default_bundle_dir
from carsearch.cli import main
from carsearch.search.study import FINISHED
from carsearch.storage.open import make_storage

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
MARIADB = "mysql://root@127.0.0.1:3306/test"
TINY_RUN = ["--max-epochs", "3", "--patience", "2", "--refit-seeds", "1", "--device", "cpu"]


def _postgres_connect(database: str = "test") -> object:
    psycopg = pytest.importorskip("psycopg")
    try:
        return psycopg.connect(
            host="127.0.0.1", user="postgres", dbname=database, connect_timeout=3, autocommit=True
        )
    except psycopg.OperationalError as error:
        pytest.skip(f"no PostgreSQL at 127.0.0.1:5432: {error}")


def _mariadb_connect() -> object:
    pymysql = pytest.importorskip("pymysql")
    try:
        return pymysql.connect(host="127.0.0.1", user="root", password="", connect_timeout=3)
    except pymysql.err.OperationalError as error:
        pytest.skip(f"no MariaDB at 127.0.0.1:3306: {error}")


@pytest.fixture
def postgres() -> str:
    _postgres_connect().close()  # type: ignore[attr-defined]
    return POSTGRES


@pytest.fixture
def mariadb() -> str:
    _mariadb_connect().close()  # type: ignore[attr-defined]
    return MARIADB


@pytest.fixture
def fresh_database(request: pytest.FixtureRequest) -> Iterator[str]:
    """An empty database on the server ``request.param`` names, its URL; dropped after."""
    name = f"carsearch_test_{uuid.uuid4().hex[:12]}"
    if request.param == "postgresql":
        server = _postgres_connect()
        server.execute(f'CREATE DATABASE "{name}"')  # type: ignore[attr-defined]
        try:
            yield f"postgresql://postgres@127.0.0.1:5432/{name}"
        finally:
            server.execute(f'DROP DATABASE "{name}" WITH (FORCE)')  # type: ignore[attr-defined]
            server.close()  # type: ignore[attr-defined]
        return
    server = _mariadb_connect()
    with server.cursor() as cursor:  # type: ignore[attr-defined]
        cursor.execute(f"CREATE DATABASE `{name}`")
    try:
        yield f"mysql://root@127.0.0.1:3306/{name}"
    finally:
        with server.cursor() as cursor:  # type: ignore[attr-defined]
            cursor.execute(f"DROP DATABASE `{name}`")
        server.close()  # type: ignore[attr-defined]


def run_or_best(command: str, storage: str, data: Path) -> list[str]:
    if command == "best":
        return ["best", "--storage", storage]
    return ["run", "--data", str(data), "--trials", "1", "--storage", storage, *TINY_RUN]


def assert_one_error_line(capsys: pytest.CaptureFixture[str], status: int, expected: str) -> None:
    err = capsys.readouterr().err
    assert status == 1, err
    assert err == f"error: {expected}\n"


UNANSWERED = "start it, or fix the host and port in the storage URL"


@pytest.mark.parametrize("command", ["run", "best"])
@pytest.mark.parametrize(
    ("storage", "expected"),
    [
        (
            "postgresql://postgres@127.0.0.1:1/test",
            f"no database server answers at 127.0.0.1:1 (connection refused); {UNANSWERED}",
        ),
        (
            "postgresql+psycopg2://postgres@127.0.0.1:1/test",
            f"no database server answers at 127.0.0.1:1 (connection refused); {UNANSWERED}",
        ),
        (
            "mysql://root@127.0.0.1:1/test",
            f"no database server answers at 127.0.0.1:1 (connection refused); {UNANSWERED}",
        ),
        (
            "foo://x/y",
            "the storage URL foo://x/y names 'foo', a database or driver SQLAlchemy does not "
            "know; expected e.g. sqlite:///studies/carsearch.db or "
            "postgresql://USER@HOST:5432/DATABASE",
        ),
    ],
)
def test_a_storage_that_cannot_open_is_one_error_line(
    command: str, storage: str, expected: str, tiny_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert_one_error_line(capsys, main(run_or_best(command, storage, tiny_csv)), expected)


@pytest.mark.parametrize("command", ["run", "best"])
@pytest.mark.parametrize("storage", ["notaurl", "postgresql://u@h:notaport/db"])
def test_an_unparsable_url_is_one_error_line(
    command: str, storage: str, tiny_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = (
        f"not a storage URL: {storage!r}; expected e.g. sqlite:///studies/carsearch.db or "
        "postgresql://USER@HOST:5432/DATABASE"
    )
    assert_one_error_line(capsys, main(run_or_best(command, storage, tiny_csv)), expected)


@pytest.mark.parametrize("command", ["run", "best"])
@pytest.mark.parametrize(
    ("storage", "blocked", "expected"),
    [
        (
            POSTGRES,
            ("psycopg", "psycopg2"),
            f"no postgresql driver is installed for the storage {POSTGRES}: "
            "pip install 'carsearch[postgres]'",
        ),
        (
            "postgresql+psycopg2://postgres@127.0.0.1:5432/test",
            ("psycopg2",),
            "the storage postgresql+psycopg2://postgres@127.0.0.1:5432/test needs the psycopg2 "
            "driver, which is not installed: pip install 'carsearch[postgres]'",
        ),
        (
            MARIADB,
            ("MySQLdb", "pymysql"),
            f"no mysql driver is installed for the storage {MARIADB}: "
            "pip install 'carsearch[mysql]'",
        ),
        (
            "mysql+mysqldb://root@127.0.0.1:3306/test",
            ("MySQLdb",),
            "the storage mysql+mysqldb://root@127.0.0.1:3306/test needs the mysqldb driver, "
            "which is not installed: pip install mysqlclient",
        ),
    ],
)
def test_a_missing_driver_names_what_to_install(
    command: str,
    storage: str,
    blocked: tuple[str, ...],
    expected: str,
    tiny_csv: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The one thing that cannot exist here, a Python without the drivers: their imports fail.
    for module in blocked:
        monkeypatch.setitem(sys.modules, module, None)
    assert_one_error_line(capsys, main(run_or_best(command, storage, tiny_csv)), expected)


def test_postgresql_urls_fall_back_to_psycopg2(
    postgres: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    storage = make_storage(postgres)
    try:
        assert storage.engine.url.drivername == "postgresql+psycopg2"
    finally:
        storage.engine.dispose()


#: Per server: its fixture, a URL to a missing database, and the command that creates it.
MISSING_DATABASES = {
    "postgresql": (
        "postgres",
        "postgresql://postgres@127.0.0.1:5432/{name}",
        "127.0.0.1:5432",
        "createdb -h 127.0.0.1 -p 5432 -U postgres {name}",
    ),
    "mariadb": (
        "mariadb",
        "mysql://root@127.0.0.1:3306/{name}",
        "127.0.0.1:3306",
        "mysql -h 127.0.0.1 -P 3306 -u root -e 'CREATE DATABASE `{name}`'",
    ),
}


@pytest.mark.parametrize("command", ["run", "best"])
@pytest.mark.parametrize("server", list(MISSING_DATABASES))
def test_a_missing_database_says_how_to_create_it(
    server: str,
    command: str,
    tiny_csv: Path,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fixture, url, address, create = MISSING_DATABASES[server]
    request.getfixturevalue(fixture)  # skips when the server does not answer
    name = f"carsearch_missing_{uuid.uuid4().hex[:8]}"
    status = main(run_or_best(command, url.format(name=name), tiny_csv))
    assert_one_error_line(
        capsys,
        status,
        f"the database server at {address} has no database {name!r}; create it first: "
        + create.format(name=name),
    )


@pytest.mark.parametrize("command", ["run", "best"])
def test_an_unknown_postgresql_user_is_refused_in_one_line(
    command: str, postgres: str, tiny_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    user = f"nobody_{uuid.uuid4().hex[:8]}"
    status = main(run_or_best(command, f"postgresql://{user}@127.0.0.1:5432/test", tiny_csv))
    assert_one_error_line(
        capsys,
        status,
        f'the database server at 127.0.0.1:5432 refused user {user!r} (role "{user}" does not '
        "exist); check the user name and password in the storage URL",
    )


@pytest.mark.parametrize("command", ["run", "best"])
def test_a_wrong_mariadb_password_is_refused_in_one_line(
    command: str, mariadb: str, tiny_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(run_or_best(command, "mysql://root:wrong@127.0.0.1:3306/test", tiny_csv))
    assert_one_error_line(
        capsys,
        status,
        "the database server at 127.0.0.1:3306 refused user 'root' (Access denied for user "
        "'root'@'127.0.0.1' (using password: YES)); check the user name and password in the "
        "storage URL",
    )


def test_a_file_that_is_not_sqlite_is_one_error_line(
    tmp_path: Path, tiny_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are notes, not a database\n" * 100)
    status = main(run_or_best("run", f"sqlite:///{path}", tiny_csv))
    assert_one_error_line(
        capsys, status, f"cannot open the SQLite file {path}: file is not a database"
    )


@pytest.mark.parametrize("fresh_database", ["mysql", "postgresql"], indirect=True)
def test_a_tiny_run_on_a_database_server_end_to_end(
    fresh_database: str,
    tiny_csv: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # a server storage keeps its bundles under ./studies
    run = ["run", "--data", str(tiny_csv), "--study", "tiny", "--trials", "3", *TINY_RUN]
    assert main([*run, "--storage", fresh_database]) == 0, capsys.readouterr().err
    assert main(["best", "--storage", fresh_database, "--json"]) == 0, capsys.readouterr().err
    backend = make_storage(fresh_database)
    try:
        study = optuna.load_study(study_name="tiny", storage=backend)
        assert len(study.get_trials(states=FINISHED)) == 3
        bundle = default_bundle_dir(fresh_database, "tiny")
        assert bundle.parts[0] == "studies" and (tmp_path / bundle / "model.json").is_file()
    finally:
        backend.engine.dispose()
