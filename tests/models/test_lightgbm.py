"""LightGBM as a family: one study with networks, pruned at its rungs, ensembled with them,
exported as one module, and one line without the package. Real LightGBM, real SQLite."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch

import carsearch
from carsearch import plugins
from carsearch.bundle.files import inputs_of_test_rows, write_bundle
from carsearch.bundle.format import MANIFEST
from carsearch.bundle.integrity import digest_record
from carsearch.config import RunConfig
from carsearch.data.prepare import prepare
from carsearch.exceptions import TrainingError
from carsearch.search.objective import BEST_EPOCH_ATTR, make_objective
from carsearch.search.space import replay, suggest
from carsearch.search.study import make_pruner
from carsearch.search.trials import run_trials
from carsearch.testing import sample
from carsearch.testing.common import space_of
from carsearch.testing.estimators import tiny_rows
from carsearch.training.refit import Part, refit_ensemble
from helpers import carsearch_without, edit_manifest, make_mixed_frame, tiny_config

lightgbm = pytest.importorskip("lightgbm", reason="pip install 'carsearch[lightgbm]'")

#: Parameters only networks have: an estimator's trials never hold them.
NETWORK_ONLY = {"embedding_rule", "numeric_encoding", "optimizer", "batch_size", "lr_scheduler"}


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[carsearch.RunResult, RunConfig]:
    """Five trials of ``--model mlp,lightgbm`` on the mixed table, the first one LightGBM."""
    folder = tmp_path_factory.mktemp("lightgbm")
    data = folder / "mixed.csv"
    make_mixed_frame(300).to_csv(data, index=False)
    config = tiny_config(
        folder, data=str(data), model="mlp,lightgbm", n_trials=5, max_epochs=8, refit_seeds=None,
        study_name="mixed",
    )  # fmt: skip
    study = optuna.create_study(study_name="mixed", storage=config.storage, direction="maximize")
    study.enqueue_trial({"model": "lightgbm"})
    return carsearch.run(config), config


def test_one_study_searches_both_families_and_trees_skip_the_network_params(
    tmp_path: Path,
) -> None:
    config = tiny_config(tmp_path, model="mlp,lightgbm")
    prepared = prepare(config)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    families = set()
    for _ in range(12):
        trial = study.ask()
        recipe = suggest(trial, config, prepared.search.schema, len(prepared.split.train))
        study.tell(trial, 0.0)
        trees = recipe.model == "lightgbm"
        assert any(name.startswith("lgbm_") for name in trial.params) == trees
        assert bool(NETWORK_ONLY & set(trial.params)) != trees
        families.add(recipe.model)
    assert families == {"mlp", "lightgbm"}


def test_a_lightgbm_trial_is_pruned_only_at_its_rungs(tmp_path: Path) -> None:
    config = tiny_config(tmp_path, model="lightgbm", n_trials=12, max_epochs=20, patience=100)
    study = optuna.create_study(
        storage=config.storage,
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=make_pruner(config),
        direction="maximize",
    )
    objective = make_objective(config, prepare(config), torch.device("cpu"))
    run_trials(study, objective, config)  # as carsearch runs it
    pruned = study.get_trials(states=(optuna.trial.TrialState.PRUNED,))
    assert pruned, "twelve random trials, none pruned: the rungs were never reported"
    for trial in pruned:
        last = max(trial.intermediate_values)
        assert last in (2, 6, 18), f"trial {trial.number} pruned at epoch {last}"
        assert sorted(trial.intermediate_values) == list(range(1, last + 1))


def test_the_lightgbm_trials_keep_what_ensembles_need(
    mixed_run: tuple[carsearch.RunResult, RunConfig],
) -> None:
    result, _ = mixed_run
    assert result.study.trials[0].params["model"] == "lightgbm"
    trees = [t for t in result.study.trials if t.params.get("model") == "lightgbm"]
    assert trees and all(t.state.is_finished() for t in trees)
    for trial in trees:
        if trial.state == optuna.trial.TrialState.COMPLETE:
            assert trial.user_attrs[BEST_EPOCH_ATTR] >= 1
            assert "val_predictions" in trial.user_attrs
            assert not NETWORK_ONLY & set(trial.params)


def test_a_mixed_ensemble_exports_one_onnx_graph_that_agrees_with_python(
    mixed_run: tuple[carsearch.RunResult, RunConfig], tmp_path: Path
) -> None:
    onnxruntime = pytest.importorskip("onnxruntime", reason="pip install 'carsearch[onnx]'")
    result, config = mixed_run
    prepared = prepare(config)
    schema, n_rows = prepared.final.schema, len(prepared.refit_rows)
    parts = []
    for family, weight in (("mlp", 0.5), ("lightgbm", 0.5)):
        trial = next(
            t for t in result.study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
            if t.params.get("model") == family
        )  # fmt: skip
        recipe = replay(trial.params, config, schema, n_rows)
        parts.append(Part(trial.number, recipe, int(trial.user_attrs[BEST_EPOCH_ATTR]), weight))
    final = refit_ensemble(config, prepared, parts, torch.device("cpu"))
    bundle = write_bundle(tmp_path / "best", prepared=prepared, final=final)

    manifest = json.loads((bundle / MANIFEST).read_text())
    assert [part["model"] for part in manifest["members"]] == ["mlp", "lightgbm"]
    assert manifest["onnx"]["passed"] and manifest["onnx"]["max_abs_diff"] <= 1e-5
    assert manifest["torchscript"]["passed"]
    codes, numbers = inputs_of_test_rows(prepared)
    session = onnxruntime.InferenceSession(str(bundle / "model.onnx"))
    from_onnx = session.run(None, {"codes": codes.numpy(), "numbers": numbers.numpy()})[0]
    loaded = carsearch.load(bundle)  # read back from the files, as a user loads it
    with torch.inference_mode():
        np.testing.assert_allclose(from_onnx, loaded.model_(codes, numbers).numpy(), atol=1e-5)
    frame = make_mixed_frame(300).drop(columns="label").head(20)
    assert np.allclose(loaded.predict_proba(frame).sum(axis=1), 1.0, atol=1e-5)

    # Each tree member's file is LightGBM's own text: LightGBM reads it and agrees.
    assert manifest["member_files"]
    features = np.concatenate([codes.numpy(), numbers.numpy()], axis=1).astype(np.float64)
    for index, name in manifest["member_files"].items():
        booster = lightgbm.Booster(model_file=str(bundle / name))
        with torch.inference_mode():
            raw = loaded.model_.members[int(index)](codes, numbers).numpy()
        np.testing.assert_allclose(raw, booster.predict(features, raw_score=True), atol=1e-5)


def test_a_missing_lightgbm_package_is_one_line_naming_the_extra(tmp_path: Path) -> None:
    data = tmp_path / "mixed.csv"
    make_mixed_frame(60).to_csv(data, index=False)
    storage = f"sqlite:///{tmp_path / 's.db'}"
    done = carsearch_without(
        "lightgbm", "run", "--data", str(data), "--model", "mlp,lightgbm", "--storage", storage
    )
    assert done.returncode == 1
    *progress, last = done.stderr.strip().splitlines()
    assert all(line.startswith("carsearch: ") for line in progress)  # no traceback
    assert last.startswith("error: plugin 'lightgbm' ")
    assert last.endswith(
        "the lightgbm model needs the lightgbm package: pip install 'carsearch[lightgbm]'"
    )


def test_a_lightgbm_error_fails_the_trial_with_its_reason_not_the_search() -> None:
    plugin = plugins.instance("models", "lightgbm")
    params = {**sample(space_of(plugin), n_trials=1)[0][1], "lgbm_num_leaves": 1}
    rows = tiny_rows(50, 3, seed=0)
    with pytest.raises(TrainingError, match="LightGBM failed: .*num_leaves"):
        plugin.fit(rows, None, params, n_outputs=3, n_epochs=1, seed=0)


def test_a_truncated_tree_file_is_one_line_not_a_crash(tmp_path: Path) -> None:
    data = tmp_path / "mixed.csv"
    make_mixed_frame(200).to_csv(data, index=False)
    config = tiny_config(tmp_path, data=str(data), model="lightgbm", n_trials=2)
    bundle = carsearch.run(config).bundle
    names = json.loads((bundle / MANIFEST).read_text())["member_files"]
    text = bundle / names["0"]
    text.write_text(text.read_text()[: len(text.read_text()) // 2])
    # As a hostile editor would: the digests agree, only the contents are wrong.
    edit_manifest(
        bundle, lambda manifest: manifest["files"].update({text.name: digest_record(text)})
    )
    rows = tmp_path / "rows.csv"
    make_mixed_frame(20).drop(columns="label").to_csv(rows, index=False)
    done = subprocess.run(
        [sys.executable, "-m", "carsearch.cli", "predict", "--model", str(bundle), "--input",
         str(rows)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr  # LightGBM alone aborts the process (-6)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "not a LightGBM model" in errors[0]
    assert "Traceback" not in done.stderr
