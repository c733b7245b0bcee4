"""carsearch.load / load_best and `carsearch predict`: inputs, unseen values, broken bundles."""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import sqlite3
import warnings
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import carsearch
from carsearch import BundleError, ConfigError, DataError, PluginError, StudyError
from carsearch.bundle.artifacts import BUNDLE_ATTR, storage_identity
from carsearch.bundle.format import MANIFEST, TORCHSCRIPT, WEIGHTS, sha256
from carsearch.bundle.integrity import INTEGRITY, seal_folder
from carsearch.bundle.predictor import Predictor, clean_features, load, load_best
from carsearch.cli import main
from carsearch.data.schema import MISSING, UNKNOWN, Column, Schema
from carsearch.search.study import open_existing
from helpers import edit_manifest, make_frame, tamper_manifest, tiny_config

FEATURES = ["colour", "size", "shape", "noise"]


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> carsearch.RunResult:
    torch.set_num_threads(1)
    config = tiny_config(tmp_path_factory.mktemp("predictor"), n_trials=2, max_epochs=2)
    return carsearch.run(config)


@pytest.fixture
def bundle(searched: carsearch.RunResult) -> Path:
    return Path(searched.summary.bundle)


@pytest.fixture
def model(bundle: Path) -> Predictor:
    return load(bundle)


@pytest.fixture
def cars() -> pd.DataFrame:
    return make_frame(30, seed=7)


def test_predictor_follows_scikit_learn(model: Predictor, cars: pd.DataFrame) -> None:
    assert list(model.classes_) == ["maybe", "no", "yes"]
    assert list(model.feature_names_in_) == FEATURES and model.n_features_in_ == 4
    probabilities = model.predict_proba(cars)
    assert probabilities.shape == (30, 3) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    weights = model.decision_weights_ if model.decision_weights_ is not None else 1.0
    decided = (probabilities * weights).argmax(axis=1)  # the tuned decision, or argmax
    assert list(model.predict(cars)) == list(model.classes_[decided])
    assert model.predict_proba(cars.head(0)).shape == (0, 3)


def test_columns_match_by_name_and_extra_ones_are_ignored(
    model: Predictor, cars: pd.DataFrame
) -> None:
    shuffled = cars[["noise", "label", "shape", "colour", "size"]].assign(id=range(30))
    np.testing.assert_array_equal(model.predict_proba(shuffled), model.predict_proba(cars))
    as_mapping = {name: list(cars[name]) for name in FEATURES}
    np.testing.assert_array_equal(model.predict(as_mapping), model.predict(cars))
    with pytest.raises(DataError, match="by name"):
        model.predict(cars[FEATURES].to_numpy())


def test_a_missing_column_is_named(model: Predictor, cars: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="missing column 'size'"):
        model.predict(cars.drop(columns=["size"]))


def test_an_unseen_value_is_unknown_or_with_unseen_error_named(
    bundle: Path, model: Predictor, cars: pd.DataFrame
) -> None:
    expected = model.predict_proba(cars.assign(colour=UNKNOWN))[3]
    cars.loc[3, "colour"] = "purple"
    np.testing.assert_array_equal(model.predict_proba(cars)[3], expected)
    strict = load(bundle, unseen="error")
    with pytest.raises(DataError, match=r"column 'colour' has value 'purple', not seen"):
        strict.predict(cars)
    cars.loc[3, "colour"] = None  # missing, and <missing> was never seen in this training data
    with pytest.raises(DataError, match=f"column 'colour' has value '{MISSING}'"):
        strict.predict(cars)


def test_unseen_values_may_read_as_the_most_frequent(bundle: Path, cars: pd.DataFrame) -> None:
    lenient = load(bundle, unseen="most_frequent")
    frequent = lenient.most_frequent_["colour"]
    changed = cars.copy()
    changed.loc[[3, 5], "colour"] = ["purple", float("nan")]
    expected = cars.copy()
    expected.loc[[3, 5], "colour"] = frequent
    np.testing.assert_array_equal(lenient.predict_proba(changed), lenient.predict_proba(expected))
    with pytest.raises(ConfigError, match="unseen must be one of"):
        load(bundle, unseen="ignore")  # type: ignore[arg-type]


def test_missing_values_are_the_missing_category_like_in_training() -> None:
    schema = Schema((Column("a", (MISSING, "x", "y")),), "t", ("n", "p"))
    frame = pd.DataFrame({"a": ["x", None, float("nan"), "", " ?", "NA", " y "]})
    assert list(clean_features(frame, schema)["a"]) == ["x"] + [MISSING] * 5 + ["y"]


def test_load_best_finds_the_bundle_of_the_best_trial(
    searched: carsearch.RunResult, cars: pd.DataFrame
) -> None:
    storage = searched.summary.storage
    best = load_best("tiny", storage=storage)
    assert best.manifest_["trial"] == searched.study.best_trial.number
    np.testing.assert_array_equal(best.predict(cars), load_best(storage=storage).predict(cars))


def test_load_best_refuses_a_stale_or_absent_bundle(
    searched: carsearch.RunResult, tmp_path: Path
) -> None:
    storage = f"sqlite:///{tmp_path / 'copy.db'}"
    source = sqlite3.connect(searched.summary.storage.removeprefix("sqlite:///"))
    with closing(source), closing(sqlite3.connect(tmp_path / "copy.db")) as copy:
        source.backup(copy)
    stale = tmp_path / "stale"
    shutil.copytree(searched.summary.bundle, stale)
    edit_manifest(stale, lambda m: m.update(trial=999, storage=storage_identity(storage)))
    study = open_existing("tiny", storage)
    study.set_user_attr(BUNDLE_ATTR, str(stale))
    with pytest.raises(StudyError, match="trial 999, but the best trial is now.*carsearch export"):
        load_best("tiny", storage=storage)
    study.set_user_attr(BUNDLE_ATTR, None)
    with pytest.raises(StudyError, match="no exported bundle"):
        load_best("tiny", storage=storage)


def test_predict_writes_rows_with_class_and_probabilities(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = make_frame(25, seed=3)
    data = tmp_path / "cars.csv"
    rows.drop(columns=["label"]).to_csv(data, index=False)
    output = tmp_path / "predicted.csv"
    assert (
        main(["predict", "--model", str(bundle), "--input", str(data), "--output", str(output)])
        == 0
    )
    written = pd.read_csv(output, dtype=str, keep_default_na=False)
    assert list(written.columns) == [
        *FEATURES,
        "predicted_label",
        *(f"proba_{c}" for c in "maybe no yes".split()),
    ]
    assert len(written) == 25
    assert list(written["predicted_label"]) == list(load(bundle).predict(rows))
    assert main(["predict", "--model", str(bundle), "--input", str(data)]) == 0
    assert pd.read_csv(io.StringIO(capsys.readouterr().out)).shape == (25, 8)


def test_predict_reports_unseen_values_in_one_line(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "cars.csv"
    make_frame(5).drop(columns=["label"]).replace({"red": "pink"}).to_csv(data, index=False)
    command = ["predict", "--model", str(bundle), "--input", str(data)]
    assert main([*command, "--unseen", "error"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {data}: column 'colour' has value 'pink'"), err
    assert err.rstrip().endswith("known values are blue, green, red"), "not <unknown>"
    assert main([*command, "--unseen", "most_frequent"]) == 0
    assert main(command) == 0  # by default an unseen value is <unknown>


def drop_last_class(manifest: dict) -> None:
    """One class fewer everywhere the manifest lists classes (its decision weights too)."""
    manifest["classes"].pop()
    manifest["schema"]["classes"].pop()
    if manifest.get("decision_weights"):
        manifest["decision_weights"].pop()


def reverse_classes(manifest: dict) -> None:
    manifest["classes"].reverse()
    manifest["schema"]["classes"].reverse()


def flip_a_byte(file: Path) -> None:
    """The same size, one byte changed: only the sha256 can tell."""
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 1
    file.write_bytes(bytes(data))


def write_sealed(bundle: Path, name: str, data: bytes) -> None:
    (bundle / name).write_bytes(data)
    seal_folder(bundle)


def replace_with(file: Path, make: Callable[[Path], object]) -> None:
    file.unlink()
    make(file)


def many_layers(manifest: dict) -> None:
    manifest["params"].update(n_layers=900, **{f"n_units_l{i}": 8 for i in range(900)})


def replace_weights(bundle: Path, payload: object) -> None:
    """Weights the manifest vouches for (its checksum updated), so loading gets to read them."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_weights(bundle, buffer.getvalue())


class Payload:
    """A pickle that would run a shell command when unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


BROKEN: dict[str, tuple[Callable[[Path], object], str]] = {
    "no folder": (lambda b: shutil.rmtree(b), "no such bundle folder"),
    "no manifest": (lambda b: (b / MANIFEST).unlink(), "model.json: missing"),
    "malformed JSON": (lambda b: write_sealed(b, MANIFEST, b'{"format": '), "malformed JSON"),
    "not an object": (lambda b: write_sealed(b, MANIFEST, b"[1, 2]"), "not a carsearch bundle"),
    "unknown version": (
        lambda b: edit_manifest(b, lambda m: m.update(format_version=99)),
        "format version 99 is not one this carsearch reads",
    ),
    "missing field": (
        lambda b: edit_manifest(b, lambda m: m.pop("schema")),
        "field 'schema' is missing",
    ),
    "malformed schema": (
        lambda b: edit_manifest(b, lambda m: m.update(schema={"columns": 3})),
        "'schema.columns' is malformed",
    ),
    "no weights": (lambda b: (b / WEIGHTS).unlink(), "weights.pt: missing"),
    "changed weights": (
        lambda b: (b / WEIGHTS).write_bytes((b / WEIGHTS).read_bytes()[:-9]),
        "bytes where model.json records .*; the file was changed since export",
    ),
    "weights of other params": (
        lambda b: edit_manifest(b, lambda m: m["params"].update(n_layers=1, n_units_l0=9)),
        "do not fit the model",
    ),
    "other member count": (
        lambda b: edit_manifest(b, lambda m: m.update(n_members=3)),
        "holds 2 ensemble members",
    ),
    "not a state dict": (lambda b: replace_weights(b, [1, 2]), "not a state_dict"),
    "pickled code": (
        lambda b: replace_weights(b, {"x": Payload(b.parent / "pwned")}),
        "not a weights file torch can load safely",
    ),
    "pickled code, plain pickle": (  # torch warned of its protocol before refusing it
        lambda b: write_weights(b, pickle.dumps({"x": Payload(b.parent / "pwned")}, protocol=4)),
        "not a weights file torch can load safely",
    ),
    "reversed classes": (
        lambda b: tamper_manifest(b, reverse_classes),
        "model.json: its sha256 differs from the one integrity.json records",
    ),
    "edited model.json": (
        lambda b: tamper_manifest(b, lambda m: m["params"].update(n_units_l0=9)),
        "model.json: .*integrity.json records.*the file was changed since export",
    ),
    "edited torchscript": (
        lambda b: flip_a_byte(b / TORCHSCRIPT),
        "model.torchscript.pt: its sha256 differs",
    ),
    "integrity file not ours": (
        lambda b: (b / INTEGRITY).write_text("[]"),
        "not a carsearch integrity file",
    ),
    "integrity file without model.json": (
        lambda b: edit_integrity(b, lambda files: files.pop(MANIFEST)),
        "integrity.json: lists no model.json",
    ),
    "sealed file missing": (lambda b: (b / TORCHSCRIPT).unlink(), "torchscript.pt: missing"),
    "huge layer size": (
        lambda b: edit_manifest(b, lambda m: m["params"].update(n_units_l0=10**12)),
        "'params.n_units_l0' is malformed: it must be a whole number from",
    ),
    "large layer size": (  # within bounds, but not the weights' (checked without memory)
        lambda b: edit_manifest(b, lambda m: m["params"].update(n_units_l0=10**6)),
        r"do not fit the model .*torch.Size\(\[1000000,",
    ),
    "negative layer size": (
        lambda b: edit_manifest(b, lambda m: m["params"].update(n_units_l0=-5)),
        "params do not build a 'mlp' model .*negative dimension",
    ),
    "more layers than the weights": (
        lambda b: edit_manifest(b, many_layers),
        "more than the weights' .* tensors",
    ),
    "huge embedding width": (
        lambda b: edit_manifest(b, lambda m: m.update(embedding_dims=[10**9] * 4)),
        r"'embedding_dims\[0\]' is malformed",
    ),
    "huge member count": (
        lambda b: edit_manifest(b, lambda m: m.update(n_members=10**6)),
        "'n_members' is malformed",
    ),
    "3-value target_scale": (
        lambda b: edit_manifest(b, lambda m: m.update(target_scale=[0.0, 1.0, 2.0])),
        "'target_scale' is malformed: it must be a list of exactly 2 numbers",
    ),
    "repeated classes": (
        lambda b: edit_manifest(b, lambda m: m.update(classes=["no", "no", "yes"])),
        "'classes' is malformed: it must be distinct names",
    ),
    "fewer classes than the weights": (
        lambda b: edit_manifest(b, drop_last_class),
        r"do not fit the model .*torch.Size\(\[2,",
    ),
    "100k-deep nesting": (
        lambda b: write_sealed(b, MANIFEST, b"[" * 100_000 + b"]" * 100_000),
        "JSON nested more than 64 levels deep",
    ),
    "65-deep nesting": (
        lambda b: write_sealed(b, MANIFEST, b"[" * 65 + b"]" * 65),
        "JSON nested more than 64 levels deep",
    ),
    "weights a pipe": (
        lambda b: replace_with(b / WEIGHTS, os.mkfifo),
        "weights.pt: not a regular file",
    ),
    "torchscript a folder": (
        lambda b: replace_with(b / TORCHSCRIPT, os.mkdir),
        "model.torchscript.pt: not a regular file",
    ),
}


def write_weights(bundle: Path, data: bytes) -> None:
    (bundle / WEIGHTS).write_bytes(data)
    digest = sha256(data)
    edit_manifest(bundle, lambda m: m["files"][WEIGHTS].update(sha256=digest, bytes=len(data)))


def edit_integrity(bundle: Path, change: Callable[[dict], object]) -> None:
    record = json.loads((bundle / INTEGRITY).read_text())
    change(record["files"])
    (bundle / INTEGRITY).write_text(json.dumps(record))


@pytest.mark.parametrize("case", BROKEN)
def test_a_broken_bundle_is_a_clear_error(
    case: str, bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "bundle"
    shutil.copytree(bundle, broken)
    breaks, message = BROKEN[case]
    breaks(broken)
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        with pytest.raises(BundleError, match=message) as raised:
            load(broken)
    assert not warned, [str(w.message) for w in warned]
    assert "\n" not in str(raised.value)
    data = tmp_path / "cars.csv"
    make_frame(5).to_csv(data, index=False)
    assert main(["predict", "--model", str(broken), "--input", str(data)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "pwned").exists()


def test_an_unknown_model_plugin_is_named(bundle: Path, tmp_path: Path) -> None:
    broken = tmp_path / "bundle"
    shutil.copytree(bundle, broken)
    edit_manifest(broken, lambda m: m.update(model="resnet"))
    with pytest.raises(PluginError, match="unknown model 'resnet'; valid names: .*mlp"):
        load(broken)
