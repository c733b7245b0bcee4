"""optuna-dashboard on a carsearch study storage, served from this process.

The server is bound before it serves, so ``port=0`` picks a free port and the address to
open is known (and can be told) before the first request. Export bundles stored as Optuna
artifacts show on the study's dashboard page, downloadable, when the storage has them.
"""

from __future__ import annotations

import logging
import threading
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from optuna.artifacts import FileSystemArtifactStore
from sqlalchemy.engine import make_url

from carsearch.exceptions import StudyError
from carsearch.storage.open import make_storage
from carsearch.storage.sqlite import sqlite_path
from carsearch.urls import shown_url

logger = logging.getLogger("carsearch")


class _LoggingHandler(WSGIRequestHandler):
    """Request lines go to carsearch's debug log, not to stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("dashboard: " + format, *args)


def open_dashboard(storage_url: str, *, host: str = "127.0.0.1", port: int = 8080) -> WSGIServer:
    """optuna-dashboard for ``storage_url``, bound to ``host:port`` and ready to serve.

    Serve with :func:`serve_until_interrupted` (or the server's ``serve_forever()``).

    Args:
        storage_url: the study storage, as given to ``carsearch run --storage``.
        host: the interface to listen on; the default lets only this machine connect.
        port: the port; ``0`` picks a free one (read it back with :func:`dashboard_url`).

    Raises:
        StudyError: ``storage_url`` is a SQLite file that does not exist.
        OSError: the port is taken or the host cannot be bound.

    Example:
        >>> server = open_dashboard("sqlite:///studies/carsearch.db", port=0)  # doctest: +SKIP
        >>> serve_until_interrupted(server)  # doctest: +SKIP
    """
    import optuna_dashboard

    check_storage_exists(storage_url)
    app = optuna_dashboard.wsgi(
        make_storage(storage_url), artifact_store=artifact_store_for(storage_url)
    )
    return make_server(host, port, app, handler_class=_LoggingHandler)


def serve_until_interrupted(server: WSGIServer) -> None:
    """Serve until Ctrl-C, then free the port.

    Requests are served on a thread of their own while this one only waits, so Ctrl-C always
    lands here: raised in the middle of request handling, it can fall into a garbage-collector
    callback, where Python prints and drops it, and the server would go on.
    """
    thread = threading.Thread(target=server.serve_forever, name="dashboard", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(timeout=1.0)
    except KeyboardInterrupt:
        server.shutdown()
    finally:
        server.server_close()


def dashboard_url(server: WSGIServer) -> str:
    """The address to open in a browser for a server made by :func:`open_dashboard`."""
    host, port = server.socket.getsockname()[:2]
    shown = f"[{host}]" if ":" in str(host) else host
    return f"http://{shown}:{port}/dashboard/"


def check_storage_exists(storage_url: str) -> None:
    """Refuse a SQLite file that is not there, rather than serve a new, empty one.

    Raises:
        StudyError: the file is missing; the message says how studies get there.
    """
    path = sqlite_path(make_url(storage_url))
    if path is not None and not path.is_file():
        raise StudyError(
            f"no study storage at {path}; run `carsearch run --storage "
            f"{shown_url(storage_url)}` first, or give --storage"
        )


def artifact_store_for(storage_url: str) -> FileSystemArtifactStore | None:
    """The artifact store of the storage's bundles (:mod:`carsearch.bundle.artifacts`), if any."""
    from carsearch.bundle.artifacts import artifact_dir

    folder = artifact_dir(storage_url)
    return FileSystemArtifactStore(folder) if folder.is_dir() else None
