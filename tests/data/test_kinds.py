"""Column kinds: inferred by one rule, overridden by --numeric and --categorical."""

from __future__ import annotations

import logging
import re

import pandas as pd
import pytest

from carsearch.data.describe import describe_table
from carsearch.data.kinds import parse_numbers
from carsearch.data.table import make_table
from carsearch.exceptions import DataError

ROWS = 40

# (name, values over ROWS rows, expected kind or "dropped: <reason start>")
COLUMNS = [
    ("ints", [str(i % 7) for i in range(ROWS)], "numeric"),
    ("floats_with_gaps", ["1.5", "", "2.25", "NA"] * 10, "numeric"),
    ("scientific", ["1e3", "-2.5E-2", "+7", " 8 "] * 10, "numeric"),
    ("words", ["red", "blue"] * 20, "categorical"),
    ("mostly_numbers", ["1", "2", "3", "4more"] * 10, "categorical"),
    ("infinite", ["1", "inf"] * 20, "categorical"),
    ("constant", ["same"] * ROWS, "dropped: constant"),
    ("all_missing", ["", "?"] * 20, "dropped: constant"),
    ("identifier", [f"id{i}" for i in range(ROWS)], "dropped: an identifier"),
    ("numeric_identifier", [str(1000 + i) for i in range(ROWS)], "numeric"),
]


@pytest.fixture
def frame() -> pd.DataFrame:
    columns = {name: values for name, values, _ in COLUMNS}
    return pd.DataFrame({**columns, "label": ["a", "b"] * 20})


@pytest.mark.parametrize(("name", "values", "expected"), COLUMNS, ids=[c[0] for c in COLUMNS])
def test_the_rule_decides_each_kind(
    frame: pd.DataFrame, name: str, values: list[str], expected: str
) -> None:
    kinds = make_table(frame, "label", source="t.csv")
    if expected.startswith("dropped: "):
        assert kinds.dropped[name].startswith(expected.removeprefix("dropped: "))
        assert name not in kinds.kinds
    else:
        assert kinds.kinds[name] == expected


def test_dropped_columns_are_named_in_one_warning_each(
    frame: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="carsearch"):
        make_table(frame, "label", source="t.csv")
    lines = [r.getMessage() for r in caplog.records if " dropped: " in r.getMessage()]
    assert len(lines) == 3 and all(line.startswith("t.csv: column '") for line in lines)
    assert any(
        "'identifier' dropped: an identifier (40 distinct values in 40 rows)" in line
        for line in lines
    )


def test_a_short_table_keeps_its_many_valued_columns() -> None:
    frame = pd.DataFrame({"name": ["ann", "bob", "cy", "di"], "label": ["a", "b", "a", "b"]})
    assert make_table(frame, "label", source="t").kinds == {"name": "categorical"}


def test_overrides_win_and_keep_what_the_rule_drops(frame: pd.DataFrame) -> None:
    kinds = make_table(
        frame, "label", source="t", numeric=["ints"], categorical=["floats_with_gaps", "identifier"]
    )
    assert kinds.kinds["floats_with_gaps"] == "categorical"
    assert kinds.kinds["identifier"] == "categorical" and "identifier" not in kinds.dropped


@pytest.mark.parametrize(
    ("numeric", "categorical", "message"),
    [
        (["price"], [], r"t.csv: --numeric names no column 'price'; columns are ints, "),
        ([], ["label"], r"t.csv: --categorical names the target column 'label'"),
        (["ints"], ["ints"], r"column 'ints' is in both --numeric and --categorical"),
        (["words"], [], r"column 'words' is to be numeric, but line 2 holds 'red'"),
    ],
)
def test_bad_overrides_are_one_line_errors(
    frame: pd.DataFrame, numeric: list[str], categorical: list[str], message: str
) -> None:
    with pytest.raises(DataError, match=message):
        make_table(frame, "label", source="t.csv", numeric=numeric, categorical=categorical)


def test_parse_numbers_reads_missing_as_nan_and_flags_the_rest() -> None:
    numbers, failed = parse_numbers(pd.Series(["1", "", "x", "nan", "-inf", " 2.5 "]))
    assert failed.tolist() == [False, False, True, False, True, False]
    assert numbers[0] == 1.0 and numbers[5] == 2.5 and pd.isna(numbers[1]) and pd.isna(numbers[3])


# (spelling's name, a column mostly of numbers in that spelling, the example the note shows)
ODD_NUMBERS = [
    ("with thousands separators", ["1,234", "12", "3,456,789.5", "", "-1,000"] * 8, "1,234"),
    ("with comma decimals", ["3,14", "2,5", "10", "?", "-0,75"] * 8, "3,14"),
    ("with infinite values", ["1.5", "inf", "2", "-inf", ""] * 8, "inf"),
]
ODD_IDS = ["1,234", "3,14", "inf"]


@pytest.mark.parametrize(("spelling", "values", "example"), ODD_NUMBERS, ids=ODD_IDS)
def test_numbers_in_an_odd_spelling_are_categories_with_a_warning_and_a_note(
    spelling: str, values: list[str], example: str, caplog: pytest.LogCaptureFixture
) -> None:
    frame = pd.DataFrame({"price": values, "label": ["a", "b"] * 20})
    with caplog.at_level(logging.WARNING, logger="carsearch"):
        table = make_table(frame, "label", source="t.csv")
    assert table.kinds == {"price": "categorical"}
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 1, lines
    assert lines[0].startswith("t.csv: column 'price' is categorical, but looks like numbers ")
    assert f"{spelling} (e.g. {example!r})" in lines[0]
    assert "--numeric price does not parse them" in lines[0]
    price_row = describe_table(table).splitlines()[1]
    assert price_row.startswith("price") and f"numbers {spelling} (e.g. {example!r})" in price_row


@pytest.mark.parametrize(
    "values",
    [
        ["red", "blue", "green", ""] * 10,
        ["a,b", "c,d", "1,2,x", "1"] * 10,
        ["1,234", "red", "blue", "green"] * 10,  # a few spelled numbers among words
    ],
    ids=["words", "comma-lists", "mostly-words"],
)
def test_a_text_column_gets_no_warning_and_no_note(
    values: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    frame = pd.DataFrame({"colour": values, "label": ["a", "b"] * 20})
    with caplog.at_level(logging.WARNING, logger="carsearch"):
        table = make_table(frame, "label", source="t.csv")
    assert table.kinds == {"colour": "categorical"} and not table.notes
    assert not caplog.records
    assert "looks like numbers" not in describe_table(table)


def test_an_identifier_of_spelled_numbers_says_so_in_its_drop_reason() -> None:
    prices = [f"{i},{i:03d}" for i in range(1, 41)]
    frame = pd.DataFrame({"price": prices, "label": ["a", "b"] * 20})
    reason = make_table(frame, "label", source="t.csv").dropped["price"]
    assert reason.startswith("an identifier") and "numbers with thousands separators" in reason


@pytest.mark.parametrize(("spelling", "values", "example"), ODD_NUMBERS, ids=ODD_IDS)
def test_numeric_on_spelled_numbers_is_one_error_naming_spelling_and_value(
    spelling: str, values: list[str], example: str
) -> None:
    frame = pd.DataFrame({"price": values, "label": ["a", "b"] * 20})
    expected = (
        f"t.csv: column 'price' is to be numeric (--numeric), but its values are numbers "
        f"{spelling} (e.g. {example!r}), which carsearch does not read; "
    )
    with pytest.raises(DataError, match=re.escape(expected)) as error:
        make_table(frame, "label", source="t.csv", numeric=["price"])
    assert "\n" not in str(error.value) and "drop --numeric price" in str(error.value)
