"""Reading files: delimiters, headers (or none), encodings, and every bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from carsearch.cli import main
from carsearch.data.memory import available_memory
from carsearch.data.read import read_frame, read_table
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
        ["no_header.csv", "looks like data", "--no-header"],
    ),
    (
        "numbers_no_header.csv",
        b"1.5,20,yes\n2.25,31,no\n3.0,17,yes\n4.75,25,no\n",
        None,
        ["numbers_no_header.csv", "looks like data", "--no-header"],
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


def test_utf8_bom_and_non_ascii_values(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffcolour,label\ncafé,yes\nthé,no\ncafé,no\n".encode())
    table = read_table(path)
    assert table.frame.columns[0] == "colour"
    assert set(table.frame["colour"]) == {"café", "thé"}


def test_a_headerless_file_gets_c1_to_cn_and_a_numbered_target(tmp_path: Path) -> None:
    path = tmp_path / "car.data"
    path.write_text("vhigh,2,unacc\nlow,4,acc\nmed,2,unacc\nlow,4,good\n" * 3)
    table = read_table(path, "3", header=False)
    assert list(table.frame.columns) == ["c1", "c2", "c3"] and table.target == "c3"
    assert len(table.frame) == 12  # the first line is data, not a header
    named = read_table(path, "class", header=False, columns=["buying", "doors", "class"])
    assert named.target == "class" and named.kinds == {"buying": "categorical", "doors": "numeric"}


def test_columns_must_fit_the_file(tmp_path: Path) -> None:
    path = tmp_path / "car.data"
    path.write_text("vhigh,2,unacc\nlow,4,acc\n")
    with pytest.raises(DataError, match=r"car.data: --columns names 2 columns, but the file has 3"):
        read_frame(path, header=False, columns=["a", "b"])


def test_a_target_number_out_of_range_lists_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "good.csv"
    path.write_text(GOOD)
    with pytest.raises(DataError, match=r"no target column '4'; columns are colour, size, label"):
        read_table(path, "4")
    assert read_table(path, "1").target == "colour"


@pytest.mark.parametrize("command", ["describe", "run"])
def test_a_file_larger_than_memory_is_refused_before_it_is_read(
    tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    available = available_memory()
    if available is None:
        pytest.skip("this system does not say how much memory is available")
    huge = tmp_path / "huge.csv"
    with huge.open("wb") as file:
        file.truncate(available)  # sparse: no disk used, and never read
    storage = f"sqlite:///{tmp_path / 's.db'}"
    extra = ["--storage", storage] if command == "run" else []
    assert main([command, "--data", str(huge), *extra]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {huge}: a ")
    assert "of memory to" in err[0] and err[0].endswith("use a sample of its rows")
    assert not (tmp_path / "s.db").exists()
