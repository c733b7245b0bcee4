"""Tables: missing values, the target column, the content fingerprint."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from carsearch.data.read import read_table
from carsearch.data.schema import MISSING
from carsearch.data.table import make_table
from carsearch.exceptions import DataError

GOOD = "colour,size,label\n" + "red,s,yes\nblue,m,no\ngreen,l,yes\n" * 4


def fingerprint_of_carsearch_01(frame: pd.DataFrame) -> str:
    """How carsearch 0.1 fingerprinted a table of strings (kept to resume its studies)."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(frame.columns).encode())
    for row in frame.itertuples(index=False):
        digest.update(("\x1e" + "\x1f".join(row)).encode())
    return digest.hexdigest()


def test_missing_values_are_a_category_or_nan_by_kind(tmp_path: Path) -> None:
    path = tmp_path / "gaps.csv"
    path.write_text("a,n,label\nx,1.5,yes\n?,,no\nx,NA,yes\nz,4,no\n")
    table = read_table(path)
    assert table.frame["a"].tolist() == ["x", MISSING, "x", "z"]
    assert table.kinds == {"a": "categorical", "n": "numeric"}
    assert np.isnan(table.frame["n"].to_numpy()).tolist() == [False, True, True, False]


def test_car_evaluation_reads_as_the_textbook_table(car_csv: Path) -> None:
    table = read_table(car_csv)
    assert table.target == "output" and len(table.frame) == 1728
    assert set(table.kinds.values()) == {"categorical"} and not table.dropped
    assert table.class_counts() == {"acc": 384, "good": 69, "unacc": 1210, "vgood": 65}


def test_the_fingerprint_of_a_table_of_strings_is_the_one_carsearch_01_stored(
    car_csv: Path,
) -> None:
    table = read_table(car_csv)
    assert table.legacy_fingerprint() == fingerprint_of_carsearch_01(table.frame)


def test_fingerprint_follows_content_not_formatting(tmp_path: Path) -> None:
    comma, semicolon = tmp_path / "a.csv", tmp_path / "b.csv"
    comma.write_text(GOOD)
    semicolon.write_text(GOOD.replace(",", ";"))
    assert read_table(comma).fingerprint() == read_table(semicolon).fingerprint()
    changed = tmp_path / "c.csv"
    changed.write_text(GOOD.replace("green", "grey"))
    assert read_table(changed).fingerprint() != read_table(comma).fingerprint()
    numeric = pd.DataFrame({"n": ["1", "2.5", ""] * 4, "label": ["a", "b", "a"] * 4})
    other = numeric.assign(n=["1", "2.6", ""] * 4)
    assert (
        make_table(numeric, source="x").fingerprint() != make_table(other, source="x").fingerprint()
    )


@pytest.mark.parametrize("target", [None, "label", "3"])
def test_the_target_is_the_last_column_a_name_or_a_number(target: str | None) -> None:
    frame = pd.DataFrame({"a": ["x", "y"] * 3, "b": ["1", "2"] * 3, "label": ["p", "q"] * 3})
    assert make_table(frame, target, source="mem").target == "label"


@pytest.mark.parametrize(
    ("column", "task", "expected"),
    [
        ("size", "classification", "column 'size' is numeric, but line 4 holds '-5e300'"),
        ("price", "regression", "target column 'price' is to be predicted as numbers, but line 4"),
    ],
)
def test_a_number_beyond_float32_is_one_error_naming_its_line(
    column: str, task: str, expected: str
) -> None:
    sizes = [f"{i}.5" for i in range(12)]
    frame = pd.DataFrame({"size": sizes, "price": sizes, "kind": ["a", "b", "c"] * 4})
    frame.loc[2, column] = "-5e300"
    target = "price" if task == "regression" else "kind"
    with pytest.raises(DataError, match=rf"^t.csv: {expected}.*beyond the ±3.4e\+38"):
        make_table(frame, target, source="t.csv", task=task)
