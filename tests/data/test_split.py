"""Splitting rows: stratified by seed, the textbook's order, and classes too rare to split."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from carsearch import RunConfig
from carsearch.data.prepare import prepare
from carsearch.data.split import split_rows
from carsearch.data.table import make_table
from carsearch.exceptions import DataError


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


def rare_frame() -> pd.DataFrame:
    labels = ["common"] * 60 + ["usual"] * 40 + ["rare"] * 2
    return pd.DataFrame({"x": [str(i % 5) for i in range(len(labels))], "label": labels})


def test_a_class_with_two_rows_stays_in_training_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="carsearch"):
        prepared = prepare(RunConfig(), make_table(rare_frame(), "label", source="rare.csv"))
    assert prepared.rare_classes == ("rare",)
    labels = prepared.table.frame["label"].to_numpy()
    assert (labels[prepared.split.train] == "rare").sum() == 2
    assert "rare" not in set(labels[prepared.split.val]) | set(labels[prepared.split.test])
    assert "rare" in prepared.final.schema.classes  # the model still has an output for it
    assert "class(es) 'rare' have fewer than 3 rows" in caplog.text


def test_fewer_than_two_splittable_classes_is_an_error() -> None:
    frame = pd.DataFrame({"x": ["a", "b"] * 3, "label": ["big"] * 4 + ["tiny", "odd"]})
    with pytest.raises(
        DataError, match=r"needs at least two classes with 3 rows or more.*odd, tiny"
    ):
        prepare(RunConfig(), make_table(frame, "label", source="two.csv"))


@pytest.mark.parametrize(
    ("n_rows", "split", "empty"),
    [(2, "stratified", "validation"), (3, "ordered", "validation")],
)
def test_a_table_too_small_for_three_parts_is_one_error(
    n_rows: int, split: str, empty: str
) -> None:
    frame = pd.DataFrame(
        {"x": [str(i) for i in range(n_rows)], "y": [f"{i}.5" for i in range(n_rows)]}
    )
    table = make_table(frame, "y", source="small.csv", task="regression")
    with pytest.raises(
        DataError, match=rf"small.csv: {n_rows} rows are too few .*\(the {empty} part"
    ):
        prepare(RunConfig(split=split), table)


def test_a_small_numeric_target_still_gets_validation_and_test_rows() -> None:
    # 30 rows in ten deciles would leave every decile under 3 rows, all of them for training.
    frame = pd.DataFrame({"x": ["a", "b"] * 15, "y": [f"{i * 1.5}" for i in range(30)]})
    prepared = prepare(RunConfig(), make_table(frame, "y", source="s.csv", task="regression"))
    split = prepared.split
    assert len(split.val) >= 3 and len(split.test) >= 3
    assert sorted(np.concatenate([split.train, split.val, split.test]).tolist()) == list(range(30))
