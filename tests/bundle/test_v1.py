"""A bundle written by carsearch 0.1 (format version 1) still loads and predicts the same."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import carsearch
from carsearch.exceptions import DataError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture
def expected() -> dict:
    return dict(json.loads((FIXTURES / "bundle-v1-predictions.json").read_text()))


def test_a_version_1_bundle_predicts_what_carsearch_01_predicted(expected: dict) -> None:
    model = carsearch.load(FIXTURES / "bundle-v1")
    assert model.manifest_["format_version"] == 1
    rows = pd.DataFrame(expected["rows"])
    assert list(model.classes_) == expected["classes"]
    np.testing.assert_allclose(model.predict_proba(rows), expected["probabilities"], atol=1e-6)


def test_an_unseen_value_in_a_version_1_bundle_says_what_to_do(expected: dict) -> None:
    model = carsearch.load(FIXTURES / "bundle-v1")
    rows = pd.DataFrame(expected["rows"]).assign(colour="purple")
    with pytest.raises(DataError, match=r"has no <unknown> code: load it with unseen='most_freq"):
        model.predict(rows)
    lenient = carsearch.load(FIXTURES / "bundle-v1", unseen="most_frequent")
    assert lenient.predict(rows).shape == (len(rows),)
