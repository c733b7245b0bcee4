"""The export bundle's format: its files and its manifest, written and read in one place.

A bundle is a folder of four files:

* ``model.json``, the manifest: format version, versions, plugins, best parameters, the
  schema (categorical columns with their categories, numeric columns with their medians,
  classes), the numeric encoder's fitted statistics, test scores, data fingerprint, and the
  sha256 of every other file;
* ``weights.pt``, the :class:`~carsearch.models.network.Ensemble`'s ``state_dict``, read back
  with ``torch.load(..., weights_only=True)``;
* ``model.torchscript.pt``, a TorchScript program for torch without carsearch;
* ``model.onnx``, written only when ONNX Runtime agrees with PyTorch on the test rows.

Every way a bundle can be broken (a missing file, malformed JSON, an unknown format
version, weights that are not the manifest's or do not fit its parameters) raises
:class:`~carsearch.exceptions.BundleError`.
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from carsearch.data.prepare import Prepared
from carsearch.data.schema import CLASSIFICATION, Schema
from carsearch.exceptions import BundleError
from carsearch.plugins import describe
from carsearch.training.refit import Refit

FORMAT = "carsearch-bundle"
#: Version 2 added numeric columns (``numbers`` input), ``<unknown>`` codes and regression.
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
MANIFEST = "model.json"
WEIGHTS = "weights.pt"
TORCHSCRIPT = "model.torchscript.pt"
ONNX = "model.onnx"
#: Manifest fields a reader needs, with their JSON types (both versions).
REQUIRED: dict[str, type | tuple[type, ...]] = {
    "model": str,
    "params": dict,
    "embedding_dims": list,
    "n_members": int,
    "schema": dict,
    "classes": list,
    "most_frequent": dict,
    "files": dict,
}
#: Test ``[true, predicted]`` pairs a regression bundle keeps for its report.
MAX_POINTS = 1000
#: Fields version 2 added.
REQUIRED_V2: dict[str, type | tuple[type, ...]] = {
    "task": str,
    "numeric_state": (dict, type(None)),
    "target_scale": list,
}
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
        "format_version": FORMAT_VERSION,
        "carsearch_version": carsearch_version(),
        "torch_version": torch.__version__,
        "task": schema.task,
        **final.spec.to_dict(),
        "plugins": plugin_records(final),
        "best_epoch": final.n_epochs,
        "n_members": len(final.seeds),
        "seeds": list(final.seeds),
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
    chosen = {
        "model": ("models", final.recipe.model),
        "optimizer": ("optimizers", final.recipe.optimizer),
    }
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
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix.tolist()


def read_manifest(path: Path) -> dict[str, Any]:
    """The checked manifest of the bundle in ``path``."""
    if not path.is_dir():
        raise BundleError(f"{path}: no such bundle folder")
    file = path / MANIFEST
    text = read_bytes(file).decode("utf-8", errors="replace")
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise BundleError(
            f"{file}: malformed JSON ({error.msg} at line {error.lineno}, column {error.colno})"
        ) from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise BundleError(f'{file}: not a carsearch bundle manifest (no "format": {FORMAT!r})')
    version = record.get("format_version")
    if version not in READABLE_VERSIONS:
        raise BundleError(
            f"{file}: format version {version!r} is not one this carsearch reads "
            f"({', '.join(map(str, READABLE_VERSIONS))}); export the study again, or install "
            f"the carsearch that wrote it ({record.get('carsearch_version', 'unknown version')})"
        )
    required = REQUIRED if version == 1 else {**REQUIRED, **REQUIRED_V2}
    for key, kind in required.items():
        if not isinstance(record.get(key), kind):
            raise BundleError(f"{file}: field {key!r} is missing or malformed")
    return record


def manifest_schema(manifest: dict[str, Any], file: Path) -> Schema:
    """The manifest's schema, checked against its class list."""
    try:
        schema = Schema.from_dict(manifest["schema"])
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        raise BundleError(f"{file}: field 'schema' is malformed ({error!r})") from None
    if list(schema.classes) != manifest["classes"]:
        raise BundleError(f"{file}: 'classes' differs from the schema's classes")
    if len(manifest["embedding_dims"]) != len(schema.columns):
        raise BundleError(f"{file}: 'embedding_dims' needs one width per schema column")
    frequent = manifest["most_frequent"]
    if any(frequent.get(column.name) not in column.categories for column in schema.columns):
        raise BundleError(f"{file}: 'most_frequent' needs one known category per column")
    return schema


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_bytes(file: Path) -> bytes:
    try:
        return file.read_bytes()
    except FileNotFoundError:
        raise BundleError(f"{file}: missing; the bundle is incomplete, export it again") from None
    except OSError as error:
        raise BundleError(f"{file}: cannot read ({error.strerror})") from None


def carsearch_version() -> str:
    """The installed carsearch's version, as bundles record it."""
    try:
        return metadata.version("carsearch")
    except metadata.PackageNotFoundError:
        return "unknown"
