"""TabM: one study over both families, its bundles, and a clear error without the package."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch

import carsearch
from carsearch.bundle.format import MANIFEST
from carsearch.data.prepare import prepare
from carsearch.models.tabm import TabMNetwork
from carsearch.search.space import suggest
from helpers import carsearch_without, make_mixed_frame, tiny_config


def test_the_network_averages_k_members_trained_in_one_pass() -> None:
    net = TabMNetwork(6, 3, k=4, n_blocks=2, d_block=16, dropout=0.0, arch_type="tabm")
    outputs = net.eval()(torch.randn(5, 6))
    assert outputs.shape == (5, 4, 3)
    assert not torch.allclose(outputs[:, 0], outputs[:, 1])  # k members, not one repeated


def test_one_study_searches_both_families_and_the_model_is_a_parameter(tmp_path: Path) -> None:
    config = tiny_config(tmp_path, model="mlp,tabm")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    prepared = prepare(config)
    families = set()
    for _ in range(12):
        trial = study.ask()
        recipe = suggest(trial, config, prepared.search.schema, len(prepared.split.train))
        study.tell(trial, 0.0)
        assert trial.params["model"] == recipe.model
        assert any(name.startswith("tabm_") for name in trial.params) == (recipe.model == "tabm")
        families.add(recipe.model)
    assert families == {"mlp", "tabm"}


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory: pytest.TempPathFactory) -> carsearch.RunResult:
    folder = tmp_path_factory.mktemp("tabm")
    data = folder / "mixed.csv"
    make_mixed_frame(240).to_csv(data, index=False)
    config = tiny_config(folder, data=str(data), model="mlp,tabm", n_trials=3, refit_seeds=None)
    return carsearch.run(config)


def test_a_three_trial_study_over_both_families_exports_and_loads(
    mixed_run: carsearch.RunResult,
) -> None:
    models = {t.params["model"] for t in mixed_run.study.trials}
    assert models <= {"mlp", "tabm"} and "mlp" in models  # the textbook trial comes first
    manifest = json.loads((mixed_run.bundle / MANIFEST).read_text())
    best = mixed_run.study.best_trial.params["model"]
    assert manifest["model"] == best  # the bundle records the family
    assert manifest["n_members"] == 5  # each family's own number of refits
    frame = make_mixed_frame(240).drop(columns="label").head(30)
    loaded = carsearch.load(mixed_run.bundle)
    assert loaded.predict_proba(frame).shape == (30, 3)


def test_a_tabm_bundle_exports_to_torchscript_and_onnx_within_tolerance(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime", reason="pip install 'carsearch[onnx]'")
    data = tmp_path / "mixed.csv"
    make_mixed_frame(240).to_csv(data, index=False)
    config = tiny_config(tmp_path, data=str(data), model="tabm", n_trials=2, refit_seeds=None)
    bundle = carsearch.run(config).bundle
    manifest = json.loads((bundle / MANIFEST).read_text())
    assert manifest["model"] == "tabm"
    for name in ("torchscript", "onnx"):
        assert manifest[name]["passed"] and manifest[name]["max_abs_diff"] <= 1e-5, manifest[name]
    frame = make_mixed_frame(240).drop(columns="label").head(10)
    predictions = carsearch.load(bundle).predict_proba(frame)
    assert np.allclose(predictions.sum(axis=1), 1.0, atol=1e-5)


def test_a_missing_tabm_package_is_one_line_naming_the_extra(tmp_path: Path) -> None:
    data = tmp_path / "mixed.csv"
    make_mixed_frame(60).to_csv(data, index=False)
    storage = f"sqlite:///{tmp_path / 's.db'}"
    done = carsearch_without(
        "tabm", "run", "--data", str(data), "--model", "tabm", "--storage", storage
    )
    assert done.returncode == 1
    *progress, last = done.stderr.strip().splitlines()
    assert all(line.startswith("carsearch: ") for line in progress)  # no traceback
    assert last.startswith("error: plugin 'tabm' ")
    assert last.endswith("the tabm model needs the tabm package: pip install 'carsearch[tabm]'")
