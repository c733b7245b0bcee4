"""Opening Optuna's RDB storage from a URL (SQLite by default)."""

from __future__ import annotations

from pathlib import Path

import optuna
from sqlalchemy.engine import make_url


def make_storage(url: str) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage for ``url``, creating a SQLite file's folder when needed."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.RDBStorage(url)
