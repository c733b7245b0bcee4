"""The refit and export of a post-hoc ensemble of several configurations, and its honesty."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import torch

import carsearch
from carsearch import RunConfig
from carsearch.bundle.files import inputs_of_test_rows, read_bundle, write_bundle
from carsearch.bundle.format import MANIFEST, ONNX, TORCHSCRIPT
from carsearch.data.prepare import Prepared, prepare
from carsearch.ensemble.study import select_ensemble
from carsearch.search.space import replay
from carsearch.training.refit import Part, Refit, refit_ensemble
from helpers import make_mixed_frame, tiny_config

DEVICE = torch.device("cpu")


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> RunConfig:
    """A short search of mlp and tabm on a mixed table, no ensemble yet (an ordered split:
    its test rows do not depend on the labels)."""
    folder = tmp_path_factory.mktemp("ensemble")
    make_mixed_frame(300).to_csv(folder / "mixed.csv", index=False)
    config = tiny_config(
        folder,
        data=str(folder / "mixed.csv"),
        model="mlp,tabm",
        n_trials=6,
        max_epochs=3,
        refit_seeds=1,
        split="ordered",
        pruner="none",
        ensemble=None,
    )
    carsearch.run(config)
    return config


def _trials(config: RunConfig) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name="mixed", storage=config.storage)
    return [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]


def _parts(config: RunConfig, prepared: Prepared) -> list[Part]:
    """One mlp and one tabm trial (different architectures, encoders, embedding rules)."""
    trials = _trials(config)
    picked = [next(t for t in trials if t.params.get("model", "mlp") == m) for m in ("mlp", "tabm")]
    schema, n_rows = prepared.final.schema, len(prepared.refit_rows)
    config = config.for_task(prepared.table.task)
    return [
        Part(t.number, replay(t.params, config, schema, n_rows), int(t.user_attrs["best_epoch"]), w)
        for t, w in zip(picked, (0.75, 0.25), strict=True)
    ]


def test_an_ensemble_of_two_families_exports_as_one_module_that_agrees_everywhere(
    searched: RunConfig, tmp_path: Path
) -> None:
    prepared = prepare(searched)
    final = refit_ensemble(searched, prepared, _parts(searched, prepared), DEVICE)
    assert [p["model"] for p in final.parts] == ["mlp", "tabm"]
    bundle = write_bundle(tmp_path / "bundle", prepared=prepared, final=final)
    manifest = json.loads((bundle / MANIFEST).read_text())
    assert manifest["format_version"] == 3
    assert [(p["weight"], p["n_members"]) for p in manifest["members"]] == [(0.75, 1), (0.25, 1)]
    assert manifest["torchscript"]["passed"] and manifest["onnx"]["passed"]
    read = read_bundle(bundle)
    assert read.model.weights == pytest.approx([0.75, 0.25])
    codes, numbers = inputs_of_test_rows(prepared)
    with torch.inference_mode():
        python = read.model(codes, numbers).numpy()
        original = final.model.cpu()(codes, numbers).numpy()
        script = torch.jit.load(str(bundle / TORCHSCRIPT))(codes, numbers).numpy()
    import onnxruntime

    session = onnxruntime.InferenceSession(str(bundle / ONNX), providers=["CPUExecutionProvider"])
    onnx = session.run(None, {"codes": codes.numpy(), "numbers": numbers.numpy()})[0]
    assert np.allclose(python, original, atol=1e-6)
    assert np.allclose(script, python, atol=1e-5) and np.allclose(onnx, python, atol=1e-5)
    # a weighted average, not the plain mean of the members
    with torch.inference_mode():
        each = [read.model.predict(m(codes, numbers)).numpy() for m in read.model.members]
    assert np.allclose(python, 0.75 * each[0] + 0.25 * each[1], atol=1e-6)
    assert not np.allclose(python, (each[0] + each[1]) / 2, atol=1e-4)


def _relabelled(config: RunConfig, folder: Path) -> RunConfig:
    """The same table with every test row's label changed (train and val rows untouched)."""
    prepared = prepare(config)
    frame = pd.read_csv(config.data, keep_default_na=False, dtype=str)
    test_rows = prepared.source_rows[len(prepared.split.train) + len(prepared.split.val) :]
    classes = sorted(frame["label"].unique())
    shifted = [classes[(classes.index(v) + 1) % len(classes)] for v in frame["label"]]
    frame.loc[test_rows, "label"] = np.asarray(shifted, dtype=object)[test_rows]
    frame.to_csv(folder / "relabelled.csv", index=False)
    return config.replace(data=str(folder / "relabelled.csv"))


def _weights(final: Refit) -> list[torch.Tensor]:
    return [t.detach().clone() for t in final.model.state_dict().values()]


def test_test_rows_are_never_seen_by_selection_or_refits(
    searched: RunConfig, tmp_path: Path
) -> None:
    relabelled = _relabelled(searched, tmp_path)
    original, changed = prepare(searched), prepare(relabelled)
    assert np.array_equal(original.split.test, changed.split.test)
    test = original.split.test
    assert not np.array_equal(original.final.y[test], changed.final.y[test])
    trials = _trials(searched)
    on = searched.replace(ensemble=20)
    assert select_ensemble(trials, on, original) == select_ensemble(trials, on, changed)
    first = refit_ensemble(searched, original, _parts(searched, original), DEVICE)
    second = refit_ensemble(relabelled, changed, _parts(searched, changed), DEVICE)
    assert first.parts == second.parts and first.seeds == second.seeds
    for a, b in zip(_weights(first), _weights(second), strict=True):
        assert torch.equal(a, b)
    assert first.test != second.test  # the test labels did change, and only the score saw them
