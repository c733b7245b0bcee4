"""Numeric targets end to end: the search, the summary, the bundle, its exports, the report."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import carsearch
from carsearch.bundle.files import inputs_of_test_rows
from carsearch.bundle.format import MANIFEST, ONNX, TORCHSCRIPT
from carsearch.bundle.portable import TOLERANCE
from carsearch.cli import main
from carsearch.data.prepare import prepare
from carsearch.exceptions import ConfigError
from carsearch.inspect.report import render_report
from helpers import tiny_config


def make_prices(n_rows: int = 400, seed: int = 0) -> pd.DataFrame:
    """A learnable numeric target in the thousands, a numeric column with gaps, a category."""
    rng = np.random.default_rng(seed)
    size = rng.uniform(50, 200, n_rows)
    area = rng.choice(["north", "south", "east"], n_rows)
    price = 1000 * size + 30_000 * (area == "south") + rng.normal(0, 5_000, n_rows)
    frame = pd.DataFrame({"size": size.round(1).astype(str), "area": area, "price": price.round(2)})
    frame.loc[::11, "size"] = ""
    return frame


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> tuple[carsearch.RunResult, Path]:
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("prices")
    make_prices().to_csv(folder / "prices.csv", index=False)
    config = tiny_config(folder, data=str(folder / "prices.csv"), n_trials=4, max_epochs=6)
    return carsearch.run(config.replace(target="price")), folder


def test_a_numeric_target_is_searched_as_a_regression(searched: tuple) -> None:
    result, _ = searched
    summary = result.summary.to_dict()
    assert summary["metric"] == "rmse"
    assert set(summary["test"]) == {"rmse", "mae", "r2"}
    assert all("loss" in t.params and "class_weight" not in t.params for t in result.study.trials)
    config = result.study.user_attrs["carsearch_config"]
    assert config["task"] == "regression" and config["metric"] == "rmse"


def test_the_summary_scores_are_the_bundles_predictions_in_the_targets_units(
    searched: tuple,
) -> None:
    result, folder = searched
    prepared = prepare(carsearch.RunConfig(data=str(folder / "prices.csv"), target="price"))
    rows = prepared.table.frame.iloc[prepared.split.test]
    predicted = carsearch.load(result.bundle).predict(rows)
    truth = rows["price"].to_numpy()
    rmse = float(np.sqrt(np.mean((predicted - truth) ** 2)))
    assert result.summary.test["rmse"] == pytest.approx(rmse, rel=1e-4)
    assert np.std(truth) > 10_000 and rmse < np.std(truth)  # it learned, in dollars


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
def test_torchscript_and_onnx_predict_the_same_numbers(searched: tuple) -> None:
    result, folder = searched
    manifest = json.loads((result.bundle / MANIFEST).read_text())
    assert manifest["task"] == "regression" and manifest["output"].startswith("prediction")
    mean, std = manifest["target_scale"]
    assert 50_000 < mean < 250_000 and std > 10_000
    prepared = prepare(carsearch.RunConfig(data=str(folder / "prices.csv"), target="price"))
    codes, numbers = inputs_of_test_rows(prepared)
    with torch.inference_mode():
        expected = result.refit.model(codes, numbers).numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.jit.load(str(result.bundle / TORCHSCRIPT))
    with torch.inference_mode():
        scripted = program(codes, numbers).numpy()
    assert scripted.shape == expected.shape == (len(prepared.split.test),)
    assert np.abs(scripted - expected).max() / std <= TOLERANCE
    onnxruntime = pytest.importorskip("onnxruntime", reason="pip install 'carsearch[onnx]'")
    session = onnxruntime.InferenceSession(str(result.bundle / ONNX))
    (onnx,) = session.run(["prediction"], {"codes": codes.numpy(), "numbers": numbers.numpy()})
    assert np.abs(onnx - expected).max() / std <= TOLERANCE
    assert manifest["onnx"]["passed"] and manifest["torchscript"]["passed"]


def test_a_regression_predictor_has_no_classes(searched: tuple) -> None:
    result, _ = searched
    model = carsearch.load(result.bundle)
    rows = make_prices(5, seed=1).drop(columns=["price"])
    assert model.predict(rows).dtype == np.float32
    with pytest.raises(ConfigError, match=r"predicts numbers \(price\); use predict\(\)"):
        model.predict_proba(rows)
    with pytest.raises(AttributeError, match=r"predicts numbers \(price\); it has no classes_"):
        model.classes_  # noqa: B018
    assert not hasattr(model, "classes_")


def test_predict_writes_predicted_numbers(
    searched: tuple, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result, _ = searched
    rows = tmp_path / "rows.csv"
    make_prices(6, seed=2).drop(columns=["price"]).to_csv(rows, index=False)
    out = tmp_path / "out.csv"
    assert (
        main(["predict", "--model", str(result.bundle), "--input", str(rows), "--output", str(out)])
        == 0
    )
    written = pd.read_csv(out)
    assert list(written.columns) == ["size", "area", "predicted_price"]
    assert written["predicted_price"].between(0, 1_000_000).all()


def test_the_report_shows_predictions_residuals_and_the_target(searched: tuple) -> None:
    result, _ = searched
    page = render_report(result.study)
    for title in ("Target distribution", "predicted against true", "Residuals"):
        assert title in page
    assert "confusion matrix" not in page and "Class distribution" not in page


def test_a_text_target_value_refused_leaves_the_study_as_it_was(
    searched: tuple, capsys: pytest.CaptureFixture[str]
) -> None:
    result, folder = searched
    before = [(t.number, t.state, t.params, t.value) for t in result.study.get_trials()]
    bad = folder / "bad.csv"
    make_prices().assign(
        price=lambda f: f["price"].astype(str).where(f.index != 7, "call us")
    ).to_csv(bad, index=False)
    run = ["run", "--data", str(bad), "--target", "price", "--task", "regression"]
    assert main([*run, "--study", "prices", "--storage", result.summary.storage]) == 1
    assert capsys.readouterr().err == (
        f"error: {bad}: target column 'price' is to be predicted as numbers, but line 9 holds "
        "'call us', not a finite number\n"
    )
    after = [(t.number, t.state, t.params, t.value) for t in result.study.get_trials()]
    assert after == before
