"""The export bundle: what `run` and `export` write, its parity, its artifacts, its CLI."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch

import carsearch
from carsearch.bundle.artifacts import ARTIFACTS_ATTR, BUNDLE_ATTR, bundle_path, default_bundle_dir
from carsearch.bundle.files import inputs_of_test_rows, write_bundle
from carsearch.bundle.format import MANIFEST, ONNX, TORCHSCRIPT, WEIGHTS, sha256
from carsearch.bundle.portable import TOLERANCE, _keep_if_close, save_onnx
from carsearch.bundle.predictor import load
from carsearch.cli import main
from carsearch.data.prepare import Prepared, prepare
from carsearch.search.study import FINGERPRINT_ATTR
from helpers import tiny_config

TINY_RUN = ["--max-epochs", "2", "--patience", "2", "--refit-seeds", "2", "--device", "cpu"]


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> tuple[carsearch.RunResult, Prepared]:
    """One small search on the tiny table, its bundle in the default place."""
    torch.set_num_threads(1)
    config = tiny_config(tmp_path_factory.mktemp("export"), n_trials=2, max_epochs=2)
    return carsearch.run(config), prepare(config)


def manifest_of(bundle: Path) -> dict:
    return json.loads((bundle / MANIFEST).read_text())


def test_run_writes_the_bundle_next_to_the_sqlite_file(searched: tuple) -> None:
    result, _ = searched
    bundle = Path(result.summary.bundle)
    storage = result.summary.storage
    assert bundle == default_bundle_dir(storage, "tiny").resolve()
    assert bundle.parts[-2:] == ("tiny", "best")
    assert {MANIFEST, WEIGHTS, TORCHSCRIPT, ONNX} <= {p.name for p in bundle.iterdir()}
    assert not list(bundle.glob("*.partial"))
    assert result.study.user_attrs[BUNDLE_ATTR] == str(bundle)
    assert bundle_path(result.study) == bundle


def test_manifest_records_model_data_and_test_scores(searched: tuple) -> None:
    result, prepared = searched
    manifest = manifest_of(Path(result.summary.bundle))
    best = result.study.best_trial
    assert manifest["format_version"] == 2 and manifest["torch_version"] == torch.__version__
    assert manifest["carsearch_version"] == carsearch.__version__
    assert manifest["plugins"]["model"] == {
        "name": "mlp",
        "package": "carsearch",
        "version": carsearch.__version__,
    }
    assert manifest["plugins"]["optimizer"]["name"] == best.params["optimizer"]
    assert manifest["plugins"]["embedding_rule"]["name"] == best.params["embedding_rule"]
    assert manifest["params"] == best.params and manifest["trial"] == best.number
    assert manifest["best_epoch"] == best.user_attrs["best_epoch"]
    assert manifest["n_members"] == 2
    assert manifest["schema"] == prepared.final.schema.to_dict()
    assert manifest["task"] == "classification" and manifest["numeric_state"] is None
    assert manifest["classes"] == ["maybe", "no", "yes"]
    assert manifest["data_fingerprint"] == result.study.user_attrs[FINGERPRINT_ATTR]
    assert set(manifest["most_frequent"]) == set(prepared.final.schema.categorical_names)
    test = manifest["test"]
    scores = ("accuracy", "macro_f1", "log_loss", "argmax_accuracy", "argmax_macro_f1")
    assert {k: test[k] for k in scores} == result.summary.test
    assert len(manifest["decision_weights"]) == 3  # the tuned decision's, one per class
    matrix = np.array(test["confusion_matrix"])
    assert matrix.shape == (3, 3) and matrix.sum() == len(prepared.split.test) == test["rows"]
    assert np.trace(matrix) / matrix.sum() == pytest.approx(test["accuracy"], abs=1e-6)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
def test_round_trip_bundle_torchscript_and_onnx_agree_with_the_refit(searched: tuple) -> None:
    result, prepared = searched
    bundle = Path(result.summary.bundle)
    rows = prepared.split.test
    codes, numbers = inputs_of_test_rows(prepared)
    with torch.inference_mode():
        expected = result.refit.model(codes, numbers).numpy()
    predictor = load(bundle)
    features = prepared.table.features.iloc[rows]
    np.testing.assert_allclose(predictor.predict_proba(features), expected, rtol=0, atol=1e-7)
    decided = (expected * np.array(manifest_of(bundle)["decision_weights"])).argmax(axis=1)
    assert list(predictor.predict(features)) == [prepared.final.schema.classes[i] for i in decided]
    program = torch.jit.load(str(bundle / TORCHSCRIPT))
    with torch.inference_mode():
        got = program(codes, numbers).numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE)
    onnxruntime = pytest.importorskip("onnxruntime", reason="pip install 'carsearch[onnx]'")
    session = onnxruntime.InferenceSession(str(bundle / ONNX), providers=["CPUExecutionProvider"])
    for n in (len(rows), 1):  # any number of rows
        feeds = {"codes": codes[:n].numpy(), "numbers": numbers[:n].numpy()}
        (got,) = session.run(None, feeds)
        np.testing.assert_allclose(got, expected[:n], rtol=0, atol=TOLERANCE)
    manifest = manifest_of(bundle)
    for kind in ("torchscript", "onnx"):
        record = manifest[kind]
        assert (
            record["passed"] and record["max_abs_diff"] <= TOLERANCE and record["rows"] == len(rows)
        )
    assert manifest["files"][ONNX]["sha256"] == sha256((bundle / ONNX).read_bytes())


def test_the_bundle_is_attached_to_the_study_as_artifacts(searched: tuple) -> None:
    result, _ = searched
    bundle = Path(result.summary.bundle)
    study = result.study
    metas = optuna.artifacts.get_all_artifact_meta(study)
    assert {MANIFEST, WEIGHTS, TORCHSCRIPT, ONNX} <= {meta.filename for meta in metas}
    record = study.user_attrs[ARTIFACTS_ATTR]
    assert record["trial"] == study.best_trial.number
    store = optuna.artifacts.FileSystemArtifactStore(record["store"])
    downloaded = bundle.parent / "downloaded.json"
    optuna.artifacts.download_artifact(
        artifact_store=store,
        file_path=str(downloaded),
        artifact_id=record["files"][MANIFEST]["artifact_id"],
    )
    assert downloaded.read_bytes() == (bundle / MANIFEST).read_bytes()


def test_export_reproduces_the_numbers_run_printed(
    tiny_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}"
    run = ["run", "--data", str(tiny_csv), "--trials", "2", "--storage", storage, *TINY_RUN]
    assert main([*run, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    out = tmp_path / "elsewhere"
    assert (
        main(["export", "--study", "tiny", "--storage", storage, "--out", str(out), "--json"]) == 0
    )
    exported = json.loads(capsys.readouterr().out)
    assert exported["test"] == printed["test"]
    assert exported["best_trial"] == printed["best_trial"]
    assert exported["bundle"] == str(out.resolve())
    first, second = Path(printed["bundle"]), Path(exported["bundle"])
    assert (first / WEIGHTS).read_bytes() == (second / WEIGHTS).read_bytes()
    assert main(["export", "--storage", storage]) == 0  # the storage's only study
    text = capsys.readouterr().out
    assert f"accuracy {printed['test']['accuracy']:.4f}" in text and str(first) in text


def test_a_bundle_without_onnxruntime_records_why(
    searched: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, prepared = searched
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    bundle = write_bundle(tmp_path / "b", prepared=prepared, final=result.refit)
    manifest = manifest_of(bundle)
    assert manifest["onnx"]["file"] is None and "carsearch[onnx]" in manifest["onnx"]["reason"]
    assert ONNX not in manifest["files"] and not (bundle / ONNX).exists()
    assert load(bundle).predict(prepared.table.features.head(3)).shape == (3,)


def test_onnx_falls_back_to_the_torch_export_based_exporter(
    searched: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, prepared = searched
    export = torch.onnx.export

    def without_the_deprecated_exporter(*args: object, dynamo: bool, **kwargs: object) -> object:
        if not dynamo:  # as in a torch that has removed it
            raise RuntimeError("the TorchScript-based exporter is gone")
        return export(*args, dynamo=dynamo, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", without_the_deprecated_exporter)
    codes, numbers = inputs_of_test_rows(prepared)
    model = copy.deepcopy(result.refit.model).eval()
    record = save_onnx(model, (codes, numbers), tmp_path / ONNX)
    assert record["exporter"] == "dynamo" and record["passed"], record
    onnxruntime = pytest.importorskip("onnxruntime", reason="pip install 'carsearch[onnx]'")
    session = onnxruntime.InferenceSession(str(tmp_path / ONNX))
    feeds = {"codes": codes[:2].numpy(), "numbers": numbers[:2].numpy()}
    assert session.run(None, feeds)[0].shape == (2, 3)


def test_a_failed_parity_check_keeps_no_file(tmp_path: Path) -> None:
    file = tmp_path / "m.onnx"
    record = _keep_if_close({}, b"x", file, np.zeros((2, 2)), np.full((2, 2), 1e-3))
    assert not record["passed"] and "parity check failed" in record["reason"]
    assert not file.exists()


def test_best_prints_the_best_trial_and_its_bundle(
    searched: tuple, capsys: pytest.CaptureFixture[str]
) -> None:
    result, _ = searched
    storage = result.summary.storage
    assert main(["best", "--study", "tiny", "--storage", storage, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["best_trial"] == result.study.best_trial.number
    assert shown["bundle"] == result.summary.bundle
    assert main(["best", "--storage", storage]) == 0
    assert f"bundle     {result.summary.bundle}" in capsys.readouterr().out


def test_unknown_studies_and_storages_are_one_line_errors(
    searched: tuple, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = searched[0].summary.storage
    assert main(["export", "--study", "nope", "--storage", storage]) == 1
    err = capsys.readouterr().err
    assert "no study 'nope'" in err and "studies there: 'tiny'" in err
    missing = f"sqlite:///{tmp_path / 'none.db'}"
    assert main(["best", "--storage", missing]) == 1
    assert "no study database" in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists()


def test_bundle_path_is_none_for_a_study_without_bundle(tmp_path: Path) -> None:
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'x.db'}")
    assert bundle_path(study) is None
    study.set_user_attr(BUNDLE_ATTR, str(tmp_path / "gone"))
    assert bundle_path(study) is None


def test_default_bundle_folder_is_one_safe_folder_per_storage_and_study() -> None:
    default = default_bundle_dir("sqlite:///studies/carsearch.db", "cars")
    assert default == Path("studies/carsearch/cars/best")
    hostile = default_bundle_dir("sqlite:////tmp/a/s.db", "../x/y")
    assert hostile.parent.parent == Path("/tmp/a/s") and hostile.parent.name.startswith("_x_y+")
    server = default_bundle_dir("postgresql://u:pw@h/db", "cars")
    assert server == Path("studies/postgresql-h-5432-db/cars/best")
