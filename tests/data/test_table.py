"""Reading, validating, encoding and splitting tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from carsearch.data.encode import encode
from carsearch.data.read import read_table
from carsearch.data.schema import MISSING
from carsearch.data.split import split_rows
from carsearch.data.table import make_table
from carsearch.exceptions import DataError

GOOD = "colour,size,label\n" + "red,s,yes\nblue,m,no\ngreen,l,yes\n" * 4

# (file name, bytes, target, pieces the one-line error must contain)
BAD_INPUTS = [
    ("empty.csv", b"", None, ["empty.csv", "empty"]),
    ("blank.csv", b"\n\n  \n", None, ["blank.csv", "empty"]),
    ("header_only.csv", b"a,b,label\n", None, ["header_only.csv", "no rows"]),
    (
        "latin1.csv",
        "a,label\ncaf\xe9,x\nt,y\n".encode("latin-1"),
        None,
        ["latin1.csv", "UTF-8", "0xe9"],
    ),
    (
        "no_header.csv",
        b"red,s,yes\nblue,m,no\nred,s,yes\nblue,m,no\n",
        None,
        ["no_header.csv", "looks like data"],
    ),
    (
        "one_class.csv",
        b"a,label\nx,yes\ny,yes\nz,yes\n",
        None,
        ["one_class.csv", "'label'", "single class"],
    ),
    ("missing_col.csv", GOOD.encode(), "price", ["missing_col.csv", "'price'", "colour"]),
    (
        "missing_target.csv",
        b"a,label\nx,yes\ny,\nz,no\n",
        None,
        ["missing_target.csv", "'label'", "line 3"],
    ),
    ("ragged.csv", b"a,b,label\nx,y,z\nx,y\nx,y,z,w\n", None, ["ragged.csv", "malformed"]),
    ("dupes.csv", b"a,a,label\nx,y,z\nx,y,w\n", None, ["dupes.csv", "repeated", "'a'"]),
    ("one_column.csv", b"label\nx\ny\n", None, ["one_column.csv", "feature column"]),
    ("unnamed.csv", b"a,,label\nx,y,z\nx,w,q\n", None, ["unnamed.csv", "field 2", "empty"]),
]


@pytest.mark.parametrize(
    ("name", "content", "target", "pieces"), BAD_INPUTS, ids=[row[0] for row in BAD_INPUTS]
)
def test_bad_input_gives_one_line_error(
    tmp_path: Path, name: str, content: bytes, target: str | None, pieces: list[str]
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError) as caught:
        read_table(path, target)
    message = str(caught.value)
    assert "\n" not in message
    for piece in pieces:
        assert piece in message, f"{piece!r} not in {message!r}"


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nope.csv: no such file"):
        read_table(tmp_path / "nope.csv")


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_unusual_delimiters_are_detected(tmp_path: Path, delimiter: str) -> None:
    path = tmp_path / "table.txt"
    path.write_text(GOOD.replace(",", delimiter))
    table = read_table(path)
    assert list(table.frame.columns) == ["colour", "size", "label"]
    assert table.target == "label"
    assert len(table.frame) == 12


def test_tsv_extension_and_explicit_target(tmp_path: Path) -> None:
    path = tmp_path / "table.tsv"
    path.write_text(GOOD.replace(",", "\t"))
    assert read_table(path, target="colour").target == "colour"


def test_missing_feature_values_become_their_own_category(tmp_path: Path) -> None:
    path = tmp_path / "gaps.csv"
    path.write_text("a,b,label\nx,,yes\n?,y,no\nx,NA,yes\nz,y,no\n")
    table = read_table(path)
    assert table.frame["a"].tolist() == ["x", MISSING, "x", "z"]
    assert table.frame["b"].tolist() == [MISSING, "y", MISSING, "y"]
    assert MISSING in table.schema().columns[0].categories


def test_utf8_bom_and_non_ascii_values(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffcolour,label\ncafé,yes\nthé,no\ncafé,no\n".encode())
    table = read_table(path)
    assert table.frame.columns[0] == "colour"
    assert set(table.frame["colour"]) == {"café", "thé"}


def test_car_evaluation_reads_as_the_textbook_table(car_csv: Path) -> None:
    table = read_table(car_csv)
    assert table.target == "output"
    assert len(table.frame) == 1728
    schema = table.schema()
    assert schema.classes == ("acc", "good", "unacc", "vgood")
    assert schema.cardinalities == [4, 4, 4, 3, 3, 3]


def test_encode_names_the_unseen_value_and_missing_column() -> None:
    table = make_table(pd.DataFrame({"a": ["x", "y"] * 3, "t": ["p", "q"] * 3}), "t", source="mem")
    schema = table.schema()
    assert encode(pd.DataFrame({"a": ["y", "x"]}), schema).tolist() == [[1], [0]]
    with pytest.raises(DataError, match=r"column 'a' has value 'w', not seen in training"):
        encode(pd.DataFrame({"a": ["x", "w"]}), schema)
    with pytest.raises(DataError, match="missing column 'a'"):
        encode(pd.DataFrame({"b": ["x"]}), schema)


def test_stratified_split_keeps_class_shares_and_is_seeded() -> None:
    labels = np.array([0] * 1210 + [1] * 384 + [2] * 69 + [3] * 65)
    split = split_rows(labels, kind="stratified", val_fraction=0.16, test_fraction=0.2, seed=3)
    parts = [split.train, split.val, split.test]
    assert sorted(np.concatenate(parts).tolist()) == list(range(len(labels)))
    assert [len(p) for p in parts] == [1106, 276, 346]
    for label, count in [(0, 1210), (2, 69)]:
        assert abs((labels[split.test] == label).sum() - count * 0.2) <= 1
    again = split_rows(labels, kind="stratified", val_fraction=0.16, test_fraction=0.2, seed=3)
    assert np.array_equal(again.test, split.test)
    other = split_rows(labels, kind="stratified", val_fraction=0.16, test_fraction=0.2, seed=4)
    assert not np.array_equal(other.test, split.test)


def test_ordered_split_is_the_textbook_one() -> None:
    split = split_rows(
        np.zeros(1728, dtype=int), kind="ordered", val_fraction=0.16, test_fraction=0.2, seed=0
    )
    assert split.test.tolist() == list(range(1382, 1728))
    assert split.train[0] == 0 and split.val[-1] == 1381


def test_fingerprint_follows_content_not_formatting(tmp_path: Path) -> None:
    comma, semicolon = tmp_path / "a.csv", tmp_path / "b.csv"
    comma.write_text(GOOD)
    semicolon.write_text(GOOD.replace(",", ";"))
    assert read_table(comma).fingerprint() == read_table(semicolon).fingerprint()
    changed = tmp_path / "c.csv"
    changed.write_text(GOOD.replace("green", "grey"))
    assert read_table(changed).fingerprint() != read_table(comma).fingerprint()
