"""Old schemas: a SQLite file made by an older Optuna is upgraded after a backup copy; a
database server's is left alone, with the command that upgrades it."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import optuna
import sqlalchemy
from sqlalchemy.engine import make_url

from carsearch.exceptions import StudyError
from carsearch.storage.sqlite import backup_sqlite
from carsearch.storage.urls import engine_kwargs, shown

logger = logging.getLogger("carsearch")


def upgrade_if_old(url: str, path: Path | None) -> None:
    """Bring a storage made by an older Optuna to this Optuna's schema, or say how.

    A SQLite file is copied to ``FILE.<old schema>.bak`` and upgraded in place; a database
    server may have older clients still running, so its upgrade is left to its owner.
    """
    if not _has_optuna_tables(url):
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        probe = optuna.storages.RDBStorage(
            url, skip_compatibility_check=True, skip_table_creation=True
        )
    try:
        current, head = probe.get_current_version(), probe.get_head_version()
        if current == head:
            return
        where = shown(make_url(url))
        if current not in probe.get_all_versions():
            raise StudyError(
                f"the storage {where} has Optuna schema {current}, newer than this Optuna "
                f"{optuna.__version__} knows (up to {head}); upgrade it: pip install -U optuna"
            )
        if path is None:
            raise StudyError(
                f"the storage {where} has Optuna schema {current}, older than this Optuna's "
                f"{head}; with no search running on it, upgrade it once with: "
                f"optuna storage upgrade --storage '{where}'"
            )
        backup = backup_sqlite(path, f"{current}.bak")
        probe.upgrade()
        logger.warning(
            "upgraded %s from Optuna schema %s to %s; the old file is kept as %s",
            path,
            current,
            head,
            backup,
        )
    finally:
        probe.engine.dispose()


def _has_optuna_tables(url: str) -> bool:
    parsed = make_url(url)
    engine = sqlalchemy.create_engine(url, **engine_kwargs(parsed))
    try:
        return sqlalchemy.inspect(engine).has_table("version_info")
    finally:
        engine.dispose()
