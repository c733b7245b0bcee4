"""Where bundles go, and how a study records them (user attributes, Optuna artifacts).

By default a bundle goes to ``<storage folder>/<study>/best/``, one folder per storage and
study: for a SQLite file, the folder named after the file next to it
(``studies/carsearch/<study>/best/`` for the default ``studies/carsearch.db``); for a database
server, ``studies/<dialect>-<host>-<port>-<database>/`` under the working directory. Its files
are also uploaded as Optuna artifacts of the study to ``<studies folder>/artifacts``
(``optuna-dashboard --artifact-dir`` shows them). A bundle records the storage and study it
came from (:func:`storage_identity`, never a password), and :func:`check_origin` refuses a
bundle of another.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import quote

import optuna
from sqlalchemy.engine import URL, make_url

from carsearch.bundle.format import MANIFEST, ONNX, TORCHSCRIPT, WEIGHTS, sha256
from carsearch.bundle.integrity import INTEGRITY
from carsearch.exceptions import BundleError
from carsearch.names import file_name
from carsearch.storage.sqlite import sqlite_path
from carsearch.storage.urls import studies_dir

#: Study user attribute: the absolute path of the latest bundle's folder.
BUNDLE_ATTR = "carsearch_bundle"
#: Study user attribute: the artifact store's folder, the trial, and each file's artifact id.
ARTIFACTS_ATTR = "carsearch_artifacts"
#: Manifest fields: the storage (:func:`storage_identity`) and the study a bundle came from.
STORAGE_FIELD = "storage"
STUDY_FIELD = "study"
#: A server's port when its URL names none, so that both spellings are one storage.
_DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306}


def publish(study: optuna.Study, bundle: Path, store: Path, *, trial: int) -> None:
    """Record ``bundle`` on the study and upload its files as study artifacts.

    Study artifacts, not trial ones: Optuna refuses new attributes on a finished trial, and
    the bundle is the refit's product anyway; the trial's number is recorded with them.
    Files already uploaded with the same content are not uploaded again.
    """
    study.set_user_attr(BUNDLE_ATTR, str(bundle))
    store = store.resolve()
    store.mkdir(parents=True, exist_ok=True)
    artifact_store = optuna.artifacts.FileSystemArtifactStore(store)
    previous = study.user_attrs.get(ARTIFACTS_ATTR) or {}
    known = previous.get("files", {}) if previous.get("store") == str(store) else {}
    uploaded: dict[str, dict[str, str]] = {}
    for name in (MANIFEST, WEIGHTS, TORCHSCRIPT, ONNX, INTEGRITY):
        file = bundle / name
        if not file.is_file():
            continue
        digest = sha256(file.read_bytes())
        if known.get(name, {}).get("sha256") == digest:
            uploaded[name] = known[name]
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            artifact_id = optuna.artifacts.upload_artifact(
                artifact_store=artifact_store, file_path=str(file), study_or_trial=study
            )
        uploaded[name] = {"artifact_id": artifact_id, "sha256": digest}
    study.set_user_attr(ARTIFACTS_ATTR, {"store": str(store), "trial": trial, "files": uploaded})


def bundle_path(study: optuna.Study) -> Path | None:
    """The folder of the study's latest bundle; ``None`` if it has none or it was removed."""
    value = study.user_attrs.get(BUNDLE_ATTR)
    if not isinstance(value, str):
        return None
    path = Path(value)
    return path if (path / MANIFEST).is_file() else None


def default_bundle_dir(storage: str, study_name: str) -> Path:
    """``<storage folder>/<study>/best``: one folder per storage and study, each name made
    safe by :func:`carsearch.names.file_name`.

    Example:
        >>> default_bundle_dir("sqlite:///studies/carsearch.db", "cars")
        PosixPath('studies/carsearch/cars/best')
    """
    return storage_folder(storage) / file_name(study_name) / "best"


def storage_folder(storage: str) -> Path:
    """Where a storage's bundles go: next to a SQLite file, the folder named after its stem
    (``studies/carsearch/`` for ``studies/carsearch.db``); for a database server,
    ``studies/<dialect>-<host>-<port>-<database>/`` under the working directory."""
    url = make_url(storage)
    path = sqlite_path(url)
    if path is not None:
        name = path.stem if path.suffix else f"{path.name}-bundles"
        return path.parent / file_name(name)
    if url.get_backend_name() == "sqlite":
        return studies_dir(storage) / "sqlite-memory"
    return studies_dir(storage) / file_name("-".join(map(str, _server(url))))


def storage_identity(storage: str) -> str:
    """Which storage a URL names, without its password or driver: ``sqlite:///`` and the
    SQLite file's resolved absolute path, or ``dialect://user@host:port/database``.

    Example:
        >>> storage_identity("postgresql+psycopg2://me:secret@DB.example/cars")
        'postgresql://me@db.example:5432/cars'
    """
    url = make_url(storage)
    path = sqlite_path(url)
    if path is not None:
        return f"sqlite:///{path.resolve()}"
    if url.get_backend_name() == "sqlite":
        return "sqlite://"
    backend, host, port, database = _server(url)
    user = f"{quote(url.username, safe='')}@" if url.username else ""
    return f"{backend}://{user}{host}{f':{port}' if port else ''}/{database}"


def _server(url: URL) -> tuple[str, str, int | None, str]:
    """A server URL's dialect, host (lower case), port (the default one if unnamed), database."""
    backend = url.get_backend_name()
    port = url.port or _DEFAULT_PORTS.get(backend)
    return backend, (url.host or "").lower(), port, url.database or ""


def check_origin(manifest: dict[str, Any], path: Path, *, storage: str, study: str) -> None:
    """Refuse the bundle at ``path`` unless its manifest says it came from ``study`` in
    ``storage`` (the user in the storage URL aside). A bundle written before bundles recorded
    their origin passes.

    Raises:
        BundleError: the bundle records another storage or study.
    """
    wanted = storage_identity(storage)
    recorded = manifest.get(STORAGE_FIELD)
    if isinstance(recorded, str) and _without_user(recorded) != _without_user(wanted):
        raise BundleError(
            f"the bundle at {path} was exported from storage {recorded}, not {wanted}; "
            f"export study {study!r} of {wanted} again (carsearch export)"
        )
    named = manifest.get(STUDY_FIELD)
    if isinstance(named, str) and named != study:
        raise BundleError(
            f"the bundle at {path} is of study {named!r}, not {study!r}; "
            f"export study {study!r} of {wanted} again (carsearch export)"
        )


def _without_user(identity: str) -> str:
    return re.sub(r"^(\w+://)[^@/]*@", r"\1", identity)


def artifact_dir(storage: str) -> Path:
    """The artifact store of a storage's studies: ``<studies folder>/artifacts``."""
    return studies_dir(storage) / "artifacts"
