"""Numbers held once as float32, and the data fingerprint a resumed study checks, exactly."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import torch

from carsearch import RunConfig, StudyError
from carsearch.data.prepare import prepare, same_data
from carsearch.data.read import read_table
from carsearch.search.study import FINGERPRINT_ATTR, open_study
from carsearch.training.loop import Tensors
from helpers import make_mixed_frame


def fingerprint_of_carsearch_02(frame: pd.DataFrame) -> str:
    """carsearch 0.2's ``Table.fingerprint``, verbatim (numbers float64, as text)."""
    digest = hashlib.sha256("\x1f".join(frame.columns).encode())
    for start in range(0, len(frame), 100_000):
        text = frame.iloc[start : start + 100_000].astype(str)
        rows = text.iloc[:, 0].str.cat([text[name] for name in text.columns[1:]], sep="\x1f")
        digest.update(("\x1e" + rows).str.cat().encode())
    return digest.hexdigest()


@pytest.fixture
def mixed_csv(tmp_path: Path) -> Path:
    path = tmp_path / "mixed.csv"
    make_mixed_frame(120).to_csv(path, index=False)
    return path


def changed_copy(path: Path, old: str, new: str) -> Path:
    """``path`` with its first cell ``old`` written ``new``."""
    lines = path.read_text().splitlines(keepends=True)
    row = next(i for i, line in enumerate(lines) if i and line.startswith(old + ","))
    lines[row] = new + lines[row][len(old) :]
    changed = path.with_name("changed.csv")
    changed.write_text("".join(lines))
    return changed


def test_numbers_are_float32_and_the_fingerprint_sees_below_float32(tmp_path: Path) -> None:
    path = tmp_path / "n.csv"
    rows = [f"{1 + i / 7:.9f},{'ab'[i % 2]}" for i in range(30)]
    path.write_text("n,label\n" + "\n".join(rows) + "\n")
    table = read_table(path)
    assert table.frame["n"].dtype == np.float32
    assert table.fingerprint().startswith("v2:")
    first = rows[0].split(",")[0]
    nudged = changed_copy(path, first, first + "1")  # 1.000000000 -> 1.0000000001
    assert np.float32(float(first)) == np.float32(float(first + "1"))  # same as float32
    assert read_table(nudged).fingerprint() != table.fingerprint()
    reformatted = tmp_path / "r.csv"
    reformatted.write_text(path.read_text().replace(first + ",", "1.0,"))
    assert read_table(reformatted).fingerprint() == table.fingerprint()


def test_prepared_parts_are_views_of_one_float32_encoding(mixed_csv: Path) -> None:
    prepared = prepare(RunConfig(data=str(mixed_csv)))
    table, encoded = prepared.table, prepared.search
    assert {str(table.frame[name].dtype) for name in table.numeric} == {"float32"}
    assert table.fingerprint() == read_table(mixed_csv).fingerprint()  # rows reordered
    for rows in (prepared.split.train, prepared.split.val):
        tensors = Tensors.select(encoded, rows, torch.device("cpu"))
        assert np.shares_memory(tensors.numbers.numpy(), encoded.numbers)
        assert np.shares_memory(tensors.codes.numpy(), encoded.codes)
        assert np.array_equal(tensors.numbers.numpy(), encoded.numbers[rows], equal_nan=True)


def study_with(config: RunConfig, storage: optuna.storages.BaseStorage) -> optuna.Study:
    return open_study(config, storage=storage, name="s", table=prepare(config).table)


def test_a_resumed_study_accepts_its_data_and_refuses_one_changed_cell(
    mixed_csv: Path, tmp_path: Path
) -> None:
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 's.db'}")
    config = RunConfig(data=str(mixed_csv))
    stored = study_with(config, storage).user_attrs[FINGERPRINT_ATTR]
    assert study_with(config, storage).user_attrs[FINGERPRINT_ATTR] == stored
    income = mixed_csv.read_text().splitlines()[1].split(",")[0]
    changed = changed_copy(mixed_csv, income, income + "1")
    with pytest.raises(StudyError, match="other data"):
        study_with(config.replace(data=str(changed)), storage)


def test_a_study_of_carsearch_02_still_resumes_on_its_data_only(
    mixed_csv: Path, tmp_path: Path
) -> None:
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 's.db'}")
    config = RunConfig(data=str(mixed_csv))
    study = study_with(config, storage)
    float64_frame = read_table(mixed_csv, exact=True).frame
    assert float64_frame["income"].dtype == np.float64
    old = fingerprint_of_carsearch_02(float64_frame)
    study.set_user_attr(FINGERPRINT_ATTR, old)  # as carsearch 0.2 stored it
    assert study_with(config, storage).user_attrs[FINGERPRINT_ATTR] == old
    # 0.2's fingerprint skips a row holding a missing number: change a full row's cell.
    income = mixed_csv.read_text().splitlines()[3].split(",")[0]
    changed = changed_copy(mixed_csv, income, income + "1")
    assert not same_data(old, read_table(changed), config.replace(data=str(changed)))
    with pytest.raises(StudyError, match="other data"):
        study_with(config.replace(data=str(changed)), storage)
