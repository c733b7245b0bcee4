"""The export bundle's format: its files and its manifest, written and read in one place.

A bundle is a folder of four files:

* ``model.json``, the manifest: format version, versions, plugins, best parameters, the
  schema (columns, vocabularies, classes), test scores, data fingerprint, and the sha256 of
  every other file;
* ``weights.pt``, the :class:`~carsearch.models.ensemble.Ensemble`'s ``state_dict``, read back with
  ``torch.load(..., weights_only=True)``;
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
from carsearch.data.schema import Schema
from carsearch.exceptions import BundleError
from carsearch.plugins import describe
from carsearch.training.refit import Refit

FORMAT = "carsearch-bundle"
FORMAT_VERSION = 1
MANIFEST = "model.json"
WEIGHTS = "weights.pt"
TORCHSCRIPT = "model.torchscript.pt"
ONNX = "model.onnx"
#: Manifest fields a reader needs, with their JSON types.
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


def make_manifest(prepared: Prepared, final: Refit, predicted: np.ndarray) -> dict[str, Any]:
    """The manifest's description of the model, its data and its test scores."""
    recipe, schema = final.recipe, prepared.schema
    labels = prepared.y[prepared.split.test]
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "carsearch_version": _version("carsearch"),
        "torch_version": torch.__version__,
        "model": recipe.model,
        "plugins": {
            "model": describe("models", recipe.model),
            "optimizer": describe("optimizers", recipe.optimizer),
            "embedding_rule": describe("embedding_rules", str(recipe.params["embedding_rule"])),
        },
        "params": recipe.params,
        "embedding_dims": list(recipe.embedding_dims),
        "best_epoch": final.n_epochs,
        "n_members": len(final.seeds),
        "seeds": list(final.seeds),
        "schema": schema.to_dict(),
        "feature_names": schema.feature_names,
        "classes": list(schema.classes),
        "most_frequent": most_frequent(prepared),
        "test": {
            "rows": len(labels),
            **final.test.as_dict(),
            "confusion_matrix": confusion_matrix(labels, predicted, len(schema.classes)),
        },
        "inputs": {
            "codes": "int64 (rows, columns): each value's index in its column's categories, "
            "columns in schema order; missing values are the category '<missing>'",
            "probabilities": "float32 (rows, classes), in 'classes' order",
        },
    }


def most_frequent(prepared: Prepared) -> dict[str, str]:
    """Each feature's most frequent category in the refit's rows (train + validation)."""
    rows = np.concatenate([prepared.split.train, prepared.split.val])
    codes = prepared.x[rows]
    schema: Schema = prepared.schema
    return {
        column.name: column.categories[int(np.bincount(codes[:, j]).argmax())]
        for j, column in enumerate(schema.columns)
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
    if version != FORMAT_VERSION:
        raise BundleError(
            f"{file}: format version {version!r} is not one this carsearch reads "
            f"({FORMAT_VERSION}); export the study again, or install the carsearch that wrote it "
            f"({record.get('carsearch_version', 'unknown version')})"
        )
    for key, kind in REQUIRED.items():
        if not isinstance(record.get(key), kind):
            raise BundleError(f"{file}: field {key!r} is missing or malformed")
    return record


def manifest_schema(manifest: dict[str, Any], file: Path) -> Schema:
    """The manifest's schema, checked against its class list."""
    try:
        schema = Schema.from_dict(manifest["schema"])
    except (KeyError, TypeError, AttributeError) as error:
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


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"
