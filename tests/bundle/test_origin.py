"""A bundle knows its storage and study: two SQLite files never share one, and load_best
refuses a bundle of another storage."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import carsearch
from carsearch import BundleError
from carsearch.bundle.artifacts import check_origin, storage_identity
from carsearch.bundle.format import MANIFEST
from helpers import make_frame, tiny_config


def test_two_sqlite_files_with_one_study_name_keep_their_own_bundles(tmp_path: Path) -> None:
    results = {
        name: carsearch.run(
            tiny_config(
                tmp_path,
                storage=f"sqlite:///{tmp_path / f'{name}.db'}",
                study_name="cars",
                seed=seed,
                n_trials=2,
                max_epochs=2,
                refit_seeds=1,
            )
        )
        for name, seed in (("a", 0), ("b", 1))
    }
    a, b = results["a"], results["b"]
    assert a.bundle != b.bundle
    assert a.bundle == (tmp_path / "a" / "cars" / "best").resolve()
    manifest = json.loads((a.bundle / MANIFEST).read_text())
    assert manifest["storage"] == f"sqlite:///{(tmp_path / 'a.db').resolve()}"
    assert manifest["study"] == "cars"

    rows = make_frame(seed=2).drop(columns="label")
    loaded = carsearch.load_best("cars", storage=a.summary.storage)
    assert loaded.path_ == a.bundle
    expected = carsearch.load(a.bundle).predict_proba(rows)
    assert np.array_equal(loaded.predict_proba(rows), expected)
    assert not np.array_equal(carsearch.load(b.bundle).predict_proba(rows), expected)

    shutil.rmtree(a.bundle)
    shutil.copytree(b.bundle, a.bundle)  # B's bundle where A's study looks for its own
    with pytest.raises(BundleError, match="exported from storage") as refused:
        carsearch.load_best("cars", storage=a.summary.storage)
    assert str(tmp_path / "b.db") in str(refused.value)
    assert "\n" not in str(refused.value)


def test_storage_identity_has_no_password_and_one_spelling() -> None:
    same = [
        "postgresql://me:secret@DB.example/cars",
        "postgresql+psycopg2://me:other@db.example:5432/cars",
    ]
    assert {storage_identity(url) for url in same} == {"postgresql://me@db.example:5432/cars"}
    assert storage_identity("mysql+pymysql://root@127.0.0.1/test") == (
        "mysql://root@127.0.0.1:3306/test"
    )


def test_check_origin_compares_storage_and_study(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'a.db'}"
    record = {"storage": storage_identity(storage), "study": "cars"}
    check_origin(record, tmp_path, storage=storage, study="cars")
    check_origin({}, tmp_path, storage=storage, study="cars")  # written before bundles said
    with pytest.raises(BundleError, match="is of study 'cars', not 'other'"):
        check_origin(record, tmp_path, storage=storage, study="other")
    with pytest.raises(BundleError, match="exported from storage"):
        check_origin(record, tmp_path, storage=f"sqlite:///{tmp_path / 'b.db'}", study="cars")
    server = {"storage": "postgresql://alice@h:5432/db", "study": "cars"}
    check_origin(server, tmp_path, storage="postgresql://bob:pw@h/db", study="cars")
