"""carsearch 0.1's module paths still import, with a warning naming the new place."""

from __future__ import annotations

import importlib
import sys

import pytest

from carsearch._moved import MOVED
from carsearch.api import export_study
from carsearch.bundle.artifacts import bundle_path
from carsearch.data.datasets import DatasetPlugin
from carsearch.models.base import ModelPlugin
from carsearch.models.rules import EmbeddingRule
from carsearch.training.optimizers import OptimizerPlugin


@pytest.mark.parametrize(
    ("old", "name", "new"),
    [
        ("carsearch.model", "ModelPlugin", ModelPlugin),
        ("carsearch.rules", "EmbeddingRule", EmbeddingRule),
        ("carsearch.optimizers", "OptimizerPlugin", OptimizerPlugin),
        ("carsearch.datasets", "DatasetPlugin", DatasetPlugin),
        ("carsearch.export", "export_study", export_study),
        ("carsearch.export", "bundle_path", bundle_path),
    ],
)
def test_an_old_path_gives_the_same_object_and_warns(old: str, name: str, new: object) -> None:
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=rf"{old} moved to .*carsearch.plugins"):
        module = importlib.import_module(old)
    assert getattr(module, name) is new


def test_a_name_the_old_module_never_had_is_an_attribute_error() -> None:
    sys.modules.pop("carsearch.rules", None)
    with pytest.warns(DeprecationWarning):
        module = importlib.import_module("carsearch.rules")
    with pytest.raises(AttributeError, match="'carsearch.rules' has no attribute 'nothing'"):
        module.nothing  # noqa: B018


def test_the_plugin_bases_come_from_carsearch_plugins() -> None:
    from carsearch import plugins

    assert plugins.ModelPlugin is ModelPlugin and plugins.DatasetPlugin is DatasetPlugin
    assert set(MOVED) >= {"carsearch.model", "carsearch.rules", "carsearch.optimizers"}
