"""Schemas fitted on training rows only, and encoding any rows with them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from carsearch import RunConfig
from carsearch.data.encode import encode_codes, encode_numbers, fit_schema
from carsearch.data.prepare import prepare
from carsearch.data.schema import MISSING, UNKNOWN
from carsearch.data.table import make_table
from carsearch.exceptions import DataError
from carsearch.search.space import replay
from carsearch.training.tasks import Classification, Task
from helpers import make_mixed_frame


def test_rare_categories_share_the_unknown_code_with_unseen_ones() -> None:
    frame = pd.DataFrame({"a": ["x"] * 5 + ["y"] * 3 + ["rare"] * 2, "t": ["p", "q"] * 5})
    table = make_table(frame, "t", source="mem")
    schema = fit_schema(table, np.arange(10), min_category_count=3)
    assert schema.columns[0].categories == (UNKNOWN, "x", "y")
    new = pd.DataFrame({"a": ["y", "rare", "never", MISSING]})
    assert encode_codes(new, schema).tolist() == [[2], [0], [0], [0]]
    with pytest.raises(DataError, match="column 'a' has value 'rare', not seen in training"):
        encode_codes(new, schema, unseen="error")


def test_medians_and_missing_indicators_come_from_the_given_rows() -> None:
    frame = pd.DataFrame({"n": ["1", "2", "", "100", "4"], "t": ["p", "q", "p", "q", "p"]})
    table = make_table(frame, "t", source="mem")
    schema = fit_schema(table, np.array([0, 1, 2]), min_category_count=1)
    assert schema.numeric[0].median == 1.5 and schema.numeric[0].missing_indicator
    clean = fit_schema(table, np.array([0, 3, 4]), min_category_count=1).numeric[0]
    assert clean.median == 4.0 and not clean.missing_indicator


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", r"input: column 'n' is numeric, but row 1 holds 'abc', not a finite number"),
        ("inf", r"input: column 'n' is numeric, but row 1 holds 'inf'"),
    ],
)
def test_text_in_a_numeric_column_names_column_row_and_value(value: str, message: str) -> None:
    table = make_table(pd.DataFrame({"n": ["1", "2"] * 3, "t": ["p", "q"] * 3}), "t", source="m")
    schema = fit_schema(table, np.arange(6), min_category_count=1)
    numbers = encode_numbers(pd.DataFrame({"n": ["7", "", "1e3"]}), schema)
    assert numbers[0, 0] == 7.0 and np.isnan(numbers[1, 0]) and numbers[2, 0] == 1000.0
    with pytest.raises(DataError, match=message):
        encode_numbers(pd.DataFrame({"n": ["1", value]}), schema)


def class_weights(task: Task) -> list[float]:
    assert isinstance(task, Classification) and task.weight is not None
    return [float(w) for w in task.weight]


def fitted(frame: pd.DataFrame, config: RunConfig) -> list[object]:
    """Everything fitted for the search and the refit: schemas and encoder statistics."""
    prepared = prepare(config, make_table(frame, "label", source="mixed"))
    params = {
        "numeric_encoding": "ple",
        "ple_n_bins": 8,
        "ple_d_embedding": 4,
        "ple_activation": False,
        "embedding_rule": "textbook",
        "embedding_dropout": 0.0,
        "n_layers": 1,
        "n_units_l0": 8,
        "dropout": 0.0,
        "batch_norm": False,
        "optimizer": "adam",
        "adam_lr": 1e-3,
        "adam_weight_decay": 1e-6,
        "class_weight": "balanced",
        "batch_size": 128,
        "lr_scheduler": "none",
    }
    found: list[object] = []
    for encoded, rows in (
        (prepared.search, prepared.split.train),
        (prepared.final, prepared.refit_rows),
    ):
        recipe = replay(params, config, encoded.schema, len(rows))
        found += [
            encoded.schema,
            recipe.spec(encoded, rows).numeric_state,
            class_weights(recipe.task(encoded, rows, torch.device("cpu"))),
        ]
    return found


def test_changing_a_test_row_changes_nothing_fitted() -> None:
    config = RunConfig(class_weight="balanced")
    frame = make_mixed_frame(300)
    prepared = prepare(config, make_table(frame, "label", source="mixed"))
    assert prepared.source_rows is not None
    test_rows = prepared.source_rows[prepared.split.test]  # rows of ``frame``
    changed = frame.copy()
    changed.loc[test_rows, "income"] = "999999"
    changed.loc[test_rows, "city"] = "Atlantis"
    assert fitted(changed, config) == fitted(frame, config)
    train_row = prepared.source_rows[prepared.split.train[0]]
    moved = frame.copy()
    moved.loc[train_row, "income"] = "999999"
    assert fitted(moved, config) != fitted(frame, config)  # the check can see a change


def test_a_table_holds_categories_as_codes_and_encodes_them_as_strings() -> None:
    frame = pd.DataFrame(
        {
            "colour": ["red", " blue", "red", "", "green", "red", "blue", "pink"] * 3,
            "size": ["1", "2", "3", "4", "5", "6", "7", "8"] * 3,
            "t": ["a", "b"] * 12,
        }
    )
    table = make_table(frame, "t", source="example")
    assert isinstance(table.frame["colour"].dtype, pd.CategoricalDtype)
    schema = fit_schema(table, np.arange(16), min_category_count=3)
    assert schema.columns[0].categories == (UNKNOWN, "blue", "red")  # pink, green: too rare
    as_strings = table.features.astype({"colour": str})
    codes = encode_codes(table.features, schema)
    np.testing.assert_array_equal(codes, encode_codes(as_strings, schema))
    assert codes[:8, 0].tolist() == [2, 1, 2, 0, 0, 2, 1, 0]
    with pytest.raises(DataError, match="'<missing>', not seen in training"):
        encode_codes(table.features, schema, unseen="error")


def test_a_prepared_table_holds_its_numbers_once_shared_with_both_encodings() -> None:
    frame = make_mixed_frame(200)
    table = make_table(frame, "label", source="mem")
    prepared = prepare(RunConfig(), table)
    numbers = prepared.search.numbers
    for j, name in enumerate(prepared.table.numeric):
        column = prepared.table.frame[name].to_numpy()
        assert np.shares_memory(column, numbers)
        np.testing.assert_array_equal(column, numbers[:, j])
    source = prepared.source_rows
    expected = table.frame[prepared.table.numeric].to_numpy()[source]
    np.testing.assert_array_equal(prepared.table.frame[prepared.table.numeric], expected)
    final = prepared.final
    assert final.numbers is numbers
    again = encode_numbers(prepared.table.features, final.schema)
    np.testing.assert_array_equal(final.numbers, again)
