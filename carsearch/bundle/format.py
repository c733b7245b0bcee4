"""The export bundle's format: its files and its manifest, written and read in one place.

A bundle is a folder of five files:

* ``model.json``, the manifest: format version, versions, plugins, best parameters, the
  schema (categorical columns with their categories, numeric columns with their medians,
  classes), the numeric encoder's fitted statistics, test scores, data fingerprint, and the
  sha256 of the weights, TorchScript and ONNX files;
* ``weights.pt``, the :class:`~carsearch.models.network.Ensemble`'s ``state_dict``, read back
  with ``torch.load(..., weights_only=True)``;
* ``model.torchscript.pt``, a TorchScript program for torch without carsearch;
* ``model.onnx``, written only when ONNX Runtime agrees with PyTorch on the test rows;
* ``integrity.json``, written last: the sha256 and size of every other file, ``model.json``
  included (:mod:`carsearch.bundle.integrity`).

Every way a bundle can be broken (a missing, changed or oversized file, malformed or too
deeply nested JSON, a field out of its bounds (:mod:`carsearch.bundle.validate`), an
unknown format version, weights that are not the manifest's or do not fit its parameters)
raises :class:`~carsearch.exceptions.BundleError`.
"""

from __future__ import annotations

import hashlib
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from carsearch.bundle.integrity import INTEGRITY, Digest, read_checked, read_seal
from carsearch.bundle.validate import check_manifest, parse_json
from carsearch.data.prepare import Prepared
from carsearch.data.schema import CLASSIFICATION
from carsearch.ensemble.decision import confusion
from carsearch.exceptions import BundleError
from carsearch.plugins import describe
from carsearch.training.refit import Refit

FORMAT = "carsearch-bundle"
#: Version 2 added numeric columns (``numbers`` input), ``<unknown>`` codes and regression.
FORMAT_VERSION = 2
#: Version 3: a post-hoc ensemble of several configurations, each in ``members`` (written
#: only for such ensembles; one configuration is still written as version 2).
ENSEMBLE_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
MANIFEST = "model.json"
WEIGHTS = "weights.pt"
TORCHSCRIPT = "model.torchscript.pt"
ONNX = "model.onnx"
#: An estimator member's model, as its own library's text (``member-3.txt``): no pickle.
MEMBER_TEXT = "member-{}.txt"
#: Size limits, checked before reading: the manifest, and each other file (weights, ...).
MAX_MANIFEST_BYTES = 64 << 20
MAX_FILE_BYTES = 2 << 30
#: Test ``[true, predicted]`` pairs a regression bundle keeps for its report.
MAX_POINTS = 1000
#: What the TorchScript program and ONNX file take and give, as the manifest says it.
INPUTS = {
    "codes": "int64 (rows, categorical columns): each value's index in its column's "
    "'categories' in 'schema'; 0 is '<unknown>' (a value not seen in training), a missing "
    "value is the category '<missing>'",
    "numbers": "float32 (rows, numeric columns) in 'schema' order; NaN for a missing value",
}
OUTPUTS = {
    "classification": "probabilities: float32 (rows, classes), in 'classes' order",
    "regression": "prediction: float32 (rows,), in the target's units",
}


def make_manifest(prepared: Prepared, final: Refit, predicted: np.ndarray) -> dict[str, Any]:
    """The manifest's description of the model, its data and its test scores."""
    schema = prepared.final.schema
    return {
        "format": FORMAT,
        "format_version": ENSEMBLE_VERSION if final.parts else FORMAT_VERSION,
        "carsearch_version": carsearch_version(),
        "torch_version": torch.__version__,
        "task": schema.task,
        **final.spec.to_dict(),
        "plugins": plugin_records(final),
        "best_epoch": final.n_epochs,
        "n_members": len(final.seeds),
        "seeds": list(final.seeds),
        **({"members": list(final.parts)} if final.parts else {}),
        "schema": schema.to_dict(),
        "feature_names": schema.feature_names,
        "classes": list(schema.classes),
        "target_scale": [float(v) for v in final.model.scale.tolist()],
        "dropped": dict(prepared.table.dropped),
        "most_frequent": most_frequent(prepared),
        "test": test_record(prepared, final, predicted),
        "inputs": INPUTS,
        "output": OUTPUTS[schema.task],
    }


def plugin_records(final: Refit) -> dict[str, dict[str, str]]:
    """Name, package and version of each plugin the model was made with."""
    params = final.recipe.params
    chosen = {"model": ("models", final.recipe.model)}
    if final.recipe.optimizer:  # an estimator family's recipe has none
        chosen["optimizer"] = ("optimizers", final.recipe.optimizer)
    if "embedding_rule" in params:
        chosen["embedding_rule"] = ("embedding_rules", str(params["embedding_rule"]))
    if "numeric_encoding" in params:
        chosen["numeric_encoder"] = ("numeric_encoders", str(params["numeric_encoding"]))
    return {role: describe(kind, name) for role, (kind, name) in chosen.items()}


def test_record(prepared: Prepared, final: Refit, predicted: np.ndarray) -> dict[str, Any]:
    """Test rows and scores, and the confusion matrix (classes) or some ``[true, predicted]``
    pairs (numbers; at most :data:`MAX_POINTS`, spread over the rows) for the report."""
    schema, labels = prepared.final.schema, prepared.final.y[prepared.split.test]
    record: dict[str, Any] = {"rows": len(labels), **final.test}
    if schema.task == CLASSIFICATION:
        record["confusion_matrix"] = confusion_matrix(labels, predicted, len(schema.classes))
    else:
        picked = np.unique(
            np.linspace(0, len(labels) - 1, min(MAX_POINTS, len(labels))).astype(int)
        )
        record["points"] = [[float(labels[i]), float(predicted[i])] for i in picked]
    return record


def most_frequent(prepared: Prepared) -> dict[str, str]:
    """Each categorical column's most frequent category in the refit's rows."""
    codes = prepared.final.codes[prepared.refit_rows]
    return {
        column.name: column.categories[int(np.bincount(codes[:, j]).argmax())]
        for j, column in enumerate(prepared.final.schema.columns)
    }


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, n_classes: int) -> list[list[int]]:
    """Counts, rows the true class and columns the predicted one."""
    matrix: list[list[int]] = confusion(predicted, labels, n_classes).tolist()
    return matrix


def read_manifest(path: Path) -> dict[str, Any]:
    """The checked manifest of the bundle in ``path``.

    Raises:
        BundleError: no such folder, or the manifest is missing, changed since export (its
            integrity file says), malformed, out of bounds or of an unknown format version.
    """
    return open_manifest(path)[0]


def open_manifest(path: Path) -> tuple[dict[str, Any], dict[str, Digest] | None]:
    """The checked manifest of the bundle in ``path``, and the digests its integrity file
    records (``None`` for a bundle written before integrity files)."""
    if not path.is_dir():
        raise BundleError(f"{path}: no such bundle folder")
    seal = read_seal(path)
    if seal is not None and MANIFEST not in seal:
        raise BundleError(f"{path / INTEGRITY}: lists no {MANIFEST}")
    file = path / MANIFEST
    expected = [seal[MANIFEST]] if seal is not None else []
    record = parse_json(read_checked(file, MAX_MANIFEST_BYTES, expected), file)
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise BundleError(f'{file}: not a carsearch bundle manifest (no "format": {FORMAT!r})')
    version = record.get("format_version")
    if type(version) is not int or version not in READABLE_VERSIONS:
        raise BundleError(
            f"{file}: format version {str(version)[:50]} is not one this carsearch reads "
            f"({', '.join(map(str, READABLE_VERSIONS))}); export the study again, or install "
            f"the carsearch that wrote it ({str(record.get('carsearch_version'))[:50]})"
        )
    check_manifest(record, file, version)
    return record, seal


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def carsearch_version() -> str:
    """The installed carsearch's version, as bundles record it."""
    try:
        return metadata.version("carsearch")
    except metadata.PackageNotFoundError:
        return "unknown"
