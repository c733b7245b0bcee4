"""The target: classes or numbers, decided by one rule, and what makes one unusable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from carsearch.data.read import read_table
from carsearch.data.table import make_table
from carsearch.exceptions import DataError

ROWS = 60


def frame(target: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"x": [str(i % 7) for i in range(len(target))], "y": target})


@pytest.mark.parametrize(
    ("values", "task"),
    [
        ([f"{100 + 3.7 * i:.2f}" for i in range(ROWS)], "regression"),  # fractions
        ([str(1000 + 13 * i) for i in range(ROWS)], "regression"),  # many whole numbers
        ([str(i % 2) for i in range(ROWS)], "classification"),  # 0/1
        ([str(1 + i % 5) for i in range(ROWS)], "classification"),  # a 1-5 rating
        (["yes", "no"] * (ROWS // 2), "classification"),
        ([str(i % 20) for i in range(ROWS)], "classification"),  # 20 whole values: classes
        ([str(i % 21) for i in range(ROWS)], "regression"),  # 21: numbers
    ],
)
def test_auto_picks_the_task_by_the_rule(values: list[str], task: str) -> None:
    table = make_table(frame(values), "y", source="t.csv")
    assert table.task == task
    numbers = table.frame["y"].dtype.kind == "f"
    assert numbers == (task == "regression")


def test_the_task_can_be_forced_either_way() -> None:
    ratings = [str(1 + i % 5) for i in range(ROWS)]
    assert make_table(frame(ratings), "y", source="t", task="regression").task == "regression"
    prices = [str(1000 + 13 * i) for i in range(ROWS)]
    assert (
        make_table(frame(prices), "y", source="t", task="classification").task == "classification"
    )


@pytest.mark.parametrize(
    ("values", "task", "message"),
    [
        (
            [*(f"{i}.5" for i in range(ROWS - 1)), "n/a price"],
            "auto",
            r"t.csv: target column 'y' holds numbers, but line 61 holds 'n/a price'; fix it, "
            r"or pass --task classification",
        ),
        (
            [*(f"{i}.5" for i in range(ROWS - 1)), "high"],
            "regression",
            r"t.csv: target column 'y' is to be predicted as numbers, but line 61 holds 'high'",
        ),
        (
            [*(f"{i}.5" for i in range(ROWS - 1)), "inf"],
            "regression",
            r"line 61 holds 'inf', not a finite number",
        ),
        (["7.5"] * ROWS, "regression", r"target column 'y' has a single value '7.5'"),
        (["7.5"] * ROWS, "auto", r"target column 'y' has a single value '7.5'"),
        (["7"] * ROWS, "auto", r"target column 'y' has a single class '7'"),
        (
            [*(f"{i}.5" for i in range(ROWS - 1)), ""],
            "auto",
            r"1 missing value\(s\), first on line 61",
        ),
    ],
)
def test_a_bad_target_is_one_line_naming_file_column_and_line(
    values: list[str], task: str, message: str
) -> None:
    with pytest.raises(DataError, match=message) as caught:
        make_table(frame(values), "y", source="t.csv", task=task)
    assert "\n" not in str(caught.value)


def test_a_regression_table_records_its_histogram(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    frame([f"{100 + 3.7 * i:.2f}" for i in range(ROWS)]).to_csv(path, index=False)
    described = read_table(path, "y").describe()
    histogram = described["target_histogram"]
    assert described["task"] == "regression" and described["class_counts"] == {}
    assert isinstance(histogram, dict) and sum(histogram["counts"]) == ROWS
    assert np.isclose(histogram["edges"][0], 100.0)
