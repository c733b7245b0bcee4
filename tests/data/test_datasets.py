"""Finding and downloading the Car Evaluation data, against a server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import http.server
import io
import socket
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from carsearch.data.datasets import CAR_FILE, CarEvaluation, locate_car_evaluation, search_paths
from carsearch.exceptions import DataError

SHARED_SHA256 = "c685b4b7cae69bff2d4036c97bb85eef48c1492bd55c26db7e5759001db7d852"


class _Handler(http.server.BaseHTTPRequestHandler):
    payload = b""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.send_response(200)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        self.wfile.write(self.payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def serve() -> Iterator[callable]:
    """Serve bytes over HTTP on 127.0.0.1; yields a function payload -> URL."""
    servers: list[http.server.HTTPServer] = []

    def start(payload: bytes) -> str:
        handler = type("Handler", (_Handler,), {"payload": payload})
        server = http.server.HTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/car+evaluation.zip"

    yield start
    for server in servers:
        server.shutdown()


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No data anywhere: empty data home, working folder and cache."""
    monkeypatch.setenv("CARSEARCH_DATA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def uci_zip(car_csv: Path, drop_rows: int = 0) -> bytes:
    """UCI's archive layout: car.data without a header, beside car.names."""
    lines = car_csv.read_text().splitlines()[1:]
    lines = lines[: len(lines) - drop_rows]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("car.data", "\n".join(lines) + "\n")
        archive.writestr("car.names", "Car Evaluation Database\n")
    return buffer.getvalue()


def test_download_writes_the_checked_csv_to_the_cache(
    isolated: Path, car_csv: Path, serve: callable
) -> None:
    path = locate_car_evaluation(url=serve(uci_zip(car_csv)))
    assert path == isolated / "cache" / "carsearch" / CAR_FILE
    assert hashlib.sha256(path.read_bytes()).hexdigest() == SHARED_SHA256
    assert locate_car_evaluation(url="http://127.0.0.1:9/unused") == path  # cached now


def test_a_wrong_archive_is_refused_and_nothing_cached(
    isolated: Path, car_csv: Path, serve: callable
) -> None:
    with pytest.raises(DataError, match="expected 1728 rows"):
        locate_car_evaluation(url=serve(uci_zip(car_csv, drop_rows=1)))
    with pytest.raises(DataError, match="not UCI's Car Evaluation archive"):
        locate_car_evaluation(url=serve(b"<html>not a zip</html>"))
    assert not (isolated / "cache" / "carsearch" / CAR_FILE).exists()


def test_offline_error_names_every_path_and_the_fix(isolated: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/car.zip"
    with pytest.raises(DataError) as caught:
        locate_car_evaluation(url=url)
    message = str(caught.value)
    for path in search_paths():
        assert str(path) in message
    assert "CARSEARCH_DATA_HOME" in message and url in message


def test_search_order_prefers_data_home_then_local_then_cache(
    isolated: Path, car_csv: Path
) -> None:
    expected = {
        "cache/carsearch": isolated / "cache" / "carsearch" / CAR_FILE,
        "data": Path("data") / CAR_FILE,
        "home": isolated / "home" / CAR_FILE,
    }
    for folder, path in expected.items():  # each new copy outranks the ones before
        (isolated / folder).mkdir(parents=True)
        (isolated / folder / CAR_FILE).write_bytes(car_csv.read_bytes())
        assert locate_car_evaluation(url="http://127.0.0.1:9/unused") == path
    assert CarEvaluation().load().source == str(expected["home"])
