"""The example plugin package: listed, searched with all three plugins, exported and loaded.

Needs ``pip install ./examples/carsearch-extras`` (CI does it); skipped without it.
"""

from __future__ import annotations

import contextlib
import io
import json
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import torch

import carsearch
from carsearch import PluginError
from carsearch.cli import main
from carsearch.plugins import instance as plugin_instance
from carsearch.search.study import PLUGINS_ATTR
from helpers import make_frame

resmlp = pytest.importorskip(
    "carsearch_extras.resmlp", reason="pip install ./examples/carsearch-extras"
)

EXTRAS = {"models": "resmlp", "optimizers": "adamw", "embedding_rules": "sqrt"}


@pytest.fixture(scope="module")
def summary(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``carsearch run --json`` summary of a 3-trial study using the three extras."""
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("extras")
    data = folder / "tiny.csv"
    make_frame().to_csv(data, index=False)
    argv = ["run", "--data", str(data), "--storage", f"sqlite:///{folder / 'studies.db'}"]
    argv += ["--model", "resmlp", "--optimizers", "adamw", "--embedding-rules", "sqrt"]
    argv += ["--trials", "3", "--max-epochs", "3", "--patience", "2", "--refit-seeds", "2"]
    argv += ["--device", "cpu", "--out", str(folder / "bundle"), "--json"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(argv) == 0
    record: dict[str, Any] = json.loads(out.getvalue())
    return record


def test_carsearch_plugins_lists_the_extras(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "--check"]) == 0
    lines = capsys.readouterr().out.splitlines()
    version = metadata.version("carsearch-extras")
    for name in EXTRAS.values():
        (line,) = [line for line in lines if line.split()[0] == name]
        assert f"carsearch-extras {version}" in line and line.endswith("loads")


def test_a_study_searches_with_all_three_extras(summary: dict[str, Any]) -> None:
    assert summary["n_complete"] + summary["n_pruned"] == 3 and summary["n_failed"] == 0
    params = summary["best_params"]
    assert params["embedding_rule"] == "sqrt" and params["optimizer"] == "adamw"
    assert {"resmlp_n_blocks", "resmlp_width", "resmlp_dropout"} <= set(params)
    assert {"sqrt_scale", "adamw_lr", "adamw_weight_decay"} <= set(params)
    assert not {"n_layers", "adam_lr", "embedding_dim"} & set(params)


def test_the_study_records_the_extras_and_their_version(summary: dict[str, Any]) -> None:
    study = optuna.load_study(study_name=summary["study"], storage=summary["storage"])
    recorded = study.user_attrs[PLUGINS_ATTR]
    version = metadata.version("carsearch-extras")
    for kind, name in EXTRAS.items():
        assert recorded[kind] == [{"name": name, "package": "carsearch-extras", "version": version}]


def test_the_exported_bundle_loads_and_predicts(summary: dict[str, Any]) -> None:
    model = carsearch.load(summary["bundle"])
    assert model.manifest_["model"] == "resmlp"
    assert model.manifest_["plugins"]["model"]["package"] == "carsearch-extras"
    assert model.manifest_["plugins"]["optimizer"]["name"] == "adamw"
    assert all(isinstance(member.backbone, resmlp.ResMLP) for member in model.model_.members)
    assert model.manifest_["torchscript"]["passed"]  # a plugin's model exports portably too
    cars = make_frame(20, seed=3)
    probabilities = model.predict_proba(cars)
    assert probabilities.shape == (20, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert set(model.predict(cars)) <= set(model.classes_)


def test_loading_without_the_model_plugin_names_it(
    summary: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    everything = metadata.entry_points

    def without_extras(*, group: str) -> metadata.EntryPoints:
        found = everything(group=group)
        return metadata.EntryPoints(
            ep for ep in found if ep.dist is None or ep.dist.name != "carsearch-extras"
        )

    monkeypatch.setattr(metadata, "entry_points", without_extras)
    plugin_instance.cache_clear()  # as in a fresh process where the package is uninstalled
    try:
        with pytest.raises(PluginError) as caught:
            carsearch.load(summary["bundle"])
        version = metadata.version("carsearch-extras")
        assert "unknown model 'resmlp'; valid names: lightgbm, mlp, tabm" in str(caught.value)
        assert f"made with carsearch-extras {version}" in str(caught.value)
        assert f"pip install 'carsearch-extras=={version}'" in str(caught.value)
    finally:
        plugin_instance.cache_clear()


def test_an_extra_fails_a_run_that_names_it_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["run", "--data", "x.csv", "--storage", f"sqlite:///{tmp_path / 'db'}"]
    assert main([*argv, "--optimizers", "adamw,adamx"]) == 1
    assert "unknown optimizer 'adamx'; valid names: adam, adamw, rmsprop, sgd" in (
        capsys.readouterr().err
    )
