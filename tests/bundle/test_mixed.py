"""A bundle of a mixed table: numbers in, NaN in, the same answers from every runtime."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import carsearch
from carsearch.bundle.format import MANIFEST, ONNX, TORCHSCRIPT
from carsearch.bundle.portable import TOLERANCE
from carsearch.exceptions import DataError
from helpers import make_mixed_frame, tiny_config


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> tuple[carsearch.RunResult, pd.DataFrame]:
    """A short search on the mixed table, with the rows that were its test split."""
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("mixed")
    frame = make_mixed_frame(300)
    frame.to_csv(folder / "mixed.csv", index=False)
    config = tiny_config(folder, data=str(folder / "mixed.csv"), n_trials=4, max_epochs=4)
    result = carsearch.run(config)
    return result, frame


def test_the_bundle_records_kinds_medians_and_the_encoders_state(mixed: tuple) -> None:
    result, _ = mixed
    manifest = json.loads((result.bundle / MANIFEST).read_text())
    schema = manifest["schema"]
    assert [c["name"] for c in schema["columns"]] == ["city", "plan"]
    assert [c["name"] for c in schema["numeric"]] == ["income", "age"]
    assert [c["missing_indicator"] for c in schema["numeric"]] == [False, True]
    assert schema["columns"][0]["categories"][0] == "<unknown>"
    assert manifest["params"]["numeric_encoding"] in ("standard", "quantile", "ple", "periodic")
    assert isinstance(manifest["numeric_state"], dict) and manifest["numeric_state"]
    assert manifest["feature_names"] == ["city", "plan", "income", "age"]


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
def test_torchscript_and_onnx_agree_with_the_predictor_on_rows_with_nan(mixed: tuple) -> None:
    result, frame = mixed
    model = carsearch.load(result.bundle)
    rows = frame.drop(columns=["label"]).head(40).copy()
    rows.loc[[0, 5, 9], "income"] = ""  # a missing value the training rows never had
    expected = model.predict_proba(rows)
    codes, numbers = model.encode(rows)
    assert np.isnan(numbers).any()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.jit.load(str(result.bundle / TORCHSCRIPT))
    with torch.inference_mode():
        scripted = program(torch.as_tensor(codes), torch.as_tensor(numbers)).numpy()
    np.testing.assert_allclose(scripted, expected, rtol=0, atol=TOLERANCE)
    onnxruntime = pytest.importorskip("onnxruntime", reason="pip install 'carsearch[onnx]'")
    session = onnxruntime.InferenceSession(str(result.bundle / ONNX))
    (onnx,) = session.run(None, {"codes": codes, "numbers": numbers})
    np.testing.assert_allclose(onnx, expected, rtol=0, atol=TOLERANCE)


def test_new_numbers_and_unseen_categories_predict(mixed: tuple) -> None:
    result, frame = mixed
    model = carsearch.load(result.bundle)
    rows = frame.drop(columns=["label"]).head(3).copy()
    rows["income"] = ["41.23", "1e9", ""]  # never seen, far out of range, missing
    rows["city"] = ["tokyo", "paris", "tokyo"]
    probabilities = model.predict_proba(rows)
    assert probabilities.shape == (3, 3) and np.allclose(probabilities.sum(axis=1), 1.0)
    strict = carsearch.load(result.bundle, unseen="error")
    with pytest.raises(DataError, match=r"column 'city' has value 'tokyo', not seen in training"):
        strict.predict(rows)


def test_text_in_a_numeric_column_is_one_line_naming_column_row_and_value(mixed: tuple) -> None:
    result, frame = mixed
    rows = frame.drop(columns=["label"]).head(4).copy()
    rows.loc[2, "age"] = "forty"
    with pytest.raises(DataError, match=r"column 'age' is numeric, but row 2 holds 'forty'"):
        carsearch.load(result.bundle).predict(rows)


def test_carsearch_predict_names_the_file_line(
    mixed: tuple, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from carsearch.cli import main

    result, frame = mixed
    rows = frame.drop(columns=["label"]).head(4).copy()
    rows.loc[2, "age"] = "forty"
    path = tmp_path / "rows.csv"
    rows.to_csv(path, index=False)
    assert main(["predict", "--model", str(result.bundle), "--input", str(path)]) == 1
    assert capsys.readouterr().err == (
        f"error: {path}: column 'age' is numeric, but line 4 holds 'forty', not a finite number\n"
    )


@pytest.mark.parametrize("value", ["1e300", "-1e300", "3.5e38"])
def test_a_number_beyond_float32_is_one_line_naming_the_column_as_in_training(
    mixed: tuple, tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    from carsearch.cli import main

    result, frame = mixed
    rows = frame.drop(columns=["label"]).head(4).copy()
    rows.loc[1, "income"] = value
    model = carsearch.load(result.bundle)
    for given in (rows, rows.assign(income=rows["income"].astype(float))):  # text, or floats
        with pytest.raises(DataError, match=r"column .income. is numeric, but row 1 .*float32"):
            model.predict(given)
    path = tmp_path / "rows.csv"
    rows.to_csv(path, index=False)
    assert main(["predict", "--model", str(result.bundle), "--input", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: column 'income' is numeric, but line 3 holds ")
    assert "beyond the ±3.4e+38 that the models compute in (float32)" in err
    assert err.count("\n") == 1
