"""The tuned class decision: the tuner, its record on the study and in the bundle, and
``predict`` applying it while ``predict_proba`` stays the calibrated probabilities."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import carsearch
from carsearch import BundleError
from carsearch.bundle.format import MANIFEST
from carsearch.bundle.predictor import load
from carsearch.cli import main
from carsearch.ensemble.decision import decision_scores, tune
from carsearch.summary import format_summary
from helpers import edit_manifest, make_frame, tiny_config


def rare_class_matrix() -> tuple[np.ndarray, np.ndarray]:
    """300 rows of 3 classes; class 2 (20 rows) is never the most probable, but its rows
    give it 0.30-0.40 where the other rows give it at most 0.25."""
    rng = np.random.default_rng(0)
    y = np.array([0] * 180 + [1] * 100 + [2] * 20)
    p = np.zeros((len(y), 3))
    p[:, 2] = np.where(y == 2, rng.uniform(0.30, 0.40, len(y)), rng.uniform(0.0, 0.25, len(y)))
    mine = rng.uniform(0.6, 0.9, len(y)) * (1 - p[:, 2])
    p[:, 0] = np.where(y == 1, 1 - p[:, 2] - mine, mine)
    p[:, 0] = np.where(y == 2, (1 - p[:, 2]) * 0.7, p[:, 0])
    p[:, 1] = 1 - p[:, 0] - p[:, 2]
    return p, y


def test_the_tuner_finds_weights_that_let_a_rare_class_be_predicted() -> None:
    p, y = rare_class_matrix()
    assert not (p.argmax(axis=1) == 2).any(), "the rare class must never be the argmax"
    before = decision_scores(p, y, None)
    weights = tune(p, y)
    after = decision_scores(p, y, weights)
    assert weights[2] > 1.0
    assert after["macro_f1"] == pytest.approx(1.0)
    assert before["macro_f1"] < 0.7
    assert after["accuracy"] >= before["accuracy"]


def test_weights_stay_one_when_argmax_is_already_best() -> None:
    p, y = rare_class_matrix()
    p = np.eye(3)[y] * 0.5 + 0.5 / 3  # every row right, by a wide margin
    assert tune(p, y) == (1.0, 1.0, 1.0)


def test_accuracy_is_not_traded_beyond_the_tolerance() -> None:
    """A weight that catches 5 of 10 rare rows also loses 8 common ones: macro-F1 rises,
    accuracy falls by 0.03, so the weights stay 1 unless the tolerance allows it."""
    y = np.array([0] * 90 + [1] * 10)
    p1 = np.array([0.1] * 82 + [0.45] * 8 + [0.45] * 5 + [0.1] * 5)
    p = np.stack([1 - p1, p1], axis=1)
    assert tune(p, y, tolerance=0.002) == (1.0, 1.0)
    weights = tune(p, y, tolerance=0.05)
    assert weights[1] > 1.0
    assert decision_scores(p, y, weights)["accuracy"] == pytest.approx(0.87)


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> carsearch.RunResult:
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("decision")
    return carsearch.run(tiny_config(folder, n_trials=2, max_epochs=2))


def manifest_of(bundle: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((bundle / MANIFEST).read_text())
    return manifest


def edited_copy(bundle: Path, folder: Path, weights: Any) -> Path:
    """A copy of ``bundle`` whose model.json holds ``weights``, resealed (as someone
    editing the manifest and its integrity record would)."""
    copy = shutil.copytree(bundle, folder / "copy")
    edit_manifest(copy, lambda manifest: manifest.update(decision_weights=weights))
    return copy


def test_a_run_stores_the_weights_and_the_bundle_reloads_them(
    searched: carsearch.RunResult,
) -> None:
    bundle = Path(searched.summary.bundle or "")
    weights = manifest_of(bundle)["decision_weights"]
    decision = searched.summary.decision
    assert decision is not None and decision["weights"] == weights
    assert decision["classes"] == list(load(bundle).classes_)
    assert len(weights) == len(decision["classes"]) and min(weights) > 0
    assert load(bundle).decision_weights_.tolist() == weights
    assert searched.summary.to_dict()["decision"]["weights"] == weights
    assert {"argmax_accuracy", "argmax_macro_f1"} <= set(searched.summary.test or {})
    assert "decision   argmax of probabilities x weights" in format_summary(searched.summary)


def test_best_json_shows_the_weights(
    searched: carsearch.RunResult, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["best", "--storage", searched.summary.storage, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    bundle = Path(searched.summary.bundle or "")
    assert shown["decision"]["weights"] == manifest_of(bundle)["decision_weights"]


def test_predict_applies_the_weights_and_predict_proba_does_not(
    searched: carsearch.RunResult, tmp_path: Path
) -> None:
    bundle = Path(searched.summary.bundle or "")
    rows = make_frame(40, seed=3)
    plain = load(edited_copy(bundle, tmp_path / "plain", None))
    proba = plain.predict_proba(rows)
    assert (plain.predict(rows) == plain.classes_[proba.argmax(axis=1)]).all()
    last = [1.0] * (len(plain.classes_) - 1) + [1e6]  # the last class always wins
    weighted = load(edited_copy(bundle, tmp_path / "weighted", last))
    np.testing.assert_array_equal(weighted.predict_proba(rows), proba)
    assert (weighted.predict(rows) == plain.classes_[-1]).all()
    frame = weighted.predict_frame(rows)
    assert (frame[f"predicted_{plain.schema_.target}"] == plain.classes_[-1]).all()


@pytest.mark.parametrize(
    "weights",
    [[1.0], [1.0, 0.0, 1.0], [1.0, -2.0, 1.0], [1.0, "2", 1.0], [1.0, True, 1.0], {"a": 1}],
    ids=["too-few", "zero", "negative", "text", "bool", "object"],
)
def test_invalid_decision_weights_are_one_bundle_error(
    searched: carsearch.RunResult, tmp_path: Path, weights: Any
) -> None:
    bundle = Path(searched.summary.bundle or "")
    n_classes = len(load(bundle).classes_)
    if isinstance(weights, list) and len(weights) == 3:
        weights = weights + [1.0] * (n_classes - 3)
    copy = edited_copy(bundle, tmp_path, weights)
    with pytest.raises(BundleError, match="decision_weights"):
        load(copy)


def test_export_with_argmax_stores_no_weights(
    searched: carsearch.RunResult, tmp_path: Path
) -> None:
    result = carsearch.export_study(
        searched.summary.study,
        storage=searched.summary.storage,
        out=tmp_path / "b",
        decision="argmax",
    )
    assert manifest_of(tmp_path / "b")["decision_weights"] is None
    assert result.summary.decision is None
    assert load(tmp_path / "b").decision_weights_ is None


def test_decision_is_checked_once_in_the_configuration() -> None:
    assert carsearch.RunConfig(decision="argmax").decision == "argmax"
    with pytest.raises(carsearch.ConfigError, match="decision must be one of tuned, argmax"):
        carsearch.RunConfig(decision="best")  # type: ignore[arg-type]
