"""The export bundle's format, and reading a bundle back without unpickling anything.

A bundle is a folder of four files:

* ``model.json``, the manifest: format version, versions, plugins, best parameters, the
  schema (columns, vocabularies, classes), test scores, data fingerprint, and the sha256 of
  every other file;
* ``weights.pt``, the :class:`~carsearch.model.Ensemble`'s ``state_dict``, read back with
  ``torch.load(..., weights_only=True)``;
* ``model.torchscript.pt``, a TorchScript program for torch without carsearch;
* ``model.onnx``, written only when ONNX Runtime agrees with PyTorch on the test rows.

Every way a bundle can be broken (a missing file, malformed JSON, an unknown format
version, weights that are not the manifest's or do not fit its parameters) raises
:class:`~carsearch.exceptions.BundleError`.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from carsearch.data import Schema
from carsearch.exceptions import BundleError, PluginError
from carsearch.model import Ensemble
from carsearch.space import plugin_instance

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


@dataclass(frozen=True)
class Bundle:
    """A bundle read back: its folder, manifest, schema and the model in eval mode on CPU.

    Example:
        >>> from carsearch.bundle import read_bundle
        >>> bundle = read_bundle("studies/car_evaluation/best")  # doctest: +SKIP
        >>> bundle.schema.classes  # doctest: +SKIP
        ('acc', 'good', 'unacc', 'vgood')
    """

    path: Path
    manifest: dict[str, Any]
    schema: Schema
    model: Ensemble


def read_bundle(path: str | Path) -> Bundle:
    """Read and check the bundle in folder ``path``.

    Raises:
        BundleError: a file is missing or changed, the manifest is malformed or of an
            unknown format version, or the weights do not fit the manifest's parameters.
        PluginError: the bundle's model plugin is not installed.
    """
    path = Path(path)
    manifest = read_manifest(path)
    schema = manifest_schema(manifest, path / MANIFEST)
    state = read_weights(path, manifest)
    n_members = len({key.split(".")[1] for key in state if key.startswith("members.")})
    if n_members != manifest["n_members"]:
        raise BundleError(
            f"{path / WEIGHTS}: holds {n_members} ensemble members, {MANIFEST} says "
            f"{manifest['n_members']}"
        )
    model = build_ensemble(manifest, schema, path)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise BundleError(
            f"{path / WEIGHTS}: the weights do not fit the model that {MANIFEST} describes "
            f"({manifest['model']!r} with its params): {_first_line(error)}"
        ) from None
    return Bundle(path=path, manifest=manifest, schema=schema, model=model.eval())


def read_manifest(path: Path) -> dict[str, Any]:
    """The checked manifest of the bundle in ``path``."""
    if not path.is_dir():
        raise BundleError(f"{path}: no such bundle folder")
    file = path / MANIFEST
    text = _read_bytes(file).decode("utf-8", errors="replace")
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


def read_weights(path: Path, manifest: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The ``state_dict`` in ``weights.pt``, after checking its sha256 against the manifest."""
    file = path / WEIGHTS
    data = _read_bytes(file)
    entry = manifest["files"].get(WEIGHTS)
    expected = entry.get("sha256") if isinstance(entry, dict) else None
    if sha256(data) != expected:
        raise BundleError(
            f"{file}: its sha256 differs from the one in {MANIFEST}; the weights were changed "
            "or come from another bundle"
        )
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # the safe unpickler raises many types on bad or hostile bytes
        raise BundleError(
            f"{file}: not a weights file torch can load safely ({type(error).__name__}: "
            f"{_first_line(error)})"
        ) from None
    if not isinstance(state, dict) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in state.items()
    ):
        raise BundleError(f"{file}: not a state_dict (a mapping of names to tensors)")
    return state


def build_ensemble(manifest: dict[str, Any], schema: Schema, path: Path) -> Ensemble:
    """A fresh ensemble of the manifest's model plugin, parameters and size."""
    name = manifest["model"]
    try:
        plugin = plugin_instance("models", name)
    except PluginError as error:
        raise PluginError(
            f"{path}: the bundle's model plugin cannot be loaded: {error}{_made_with(manifest)}"
        ) from None
    dims = [int(dim) for dim in manifest["embedding_dims"]]
    try:
        members = [
            plugin.build(schema, manifest["params"], embedding_dims=dims)
            for _ in range(manifest["n_members"])
        ]
    except (KeyError, ValueError, TypeError) as error:
        raise BundleError(
            f"{path / MANIFEST}: its params do not build a {name!r} model ({error!r})"
        ) from None
    if not members:
        raise BundleError(f"{path / MANIFEST}: 'n_members' must be at least 1")
    return Ensemble(members)


def _made_with(manifest: dict[str, Any]) -> str:
    """Which package made the bundle's model, so the user knows what to install."""
    plugins = manifest.get("plugins")
    plugin = plugins.get("model") if isinstance(plugins, dict) else None
    if not isinstance(plugin, dict) or plugin.get("name") != manifest["model"]:
        return ""  # no record, or a record of another model than the one asked for
    if plugin.get("package") in (None, "?"):
        return ""
    package, version = plugin["package"], plugin.get("version", "?")
    return f"; the bundle was made with {package} {version}: pip install '{package}=={version}'"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_bytes(file: Path) -> bytes:
    try:
        return file.read_bytes()
    except FileNotFoundError:
        raise BundleError(f"{file}: missing; the bundle is incomplete, export it again") from None
    except OSError as error:
        raise BundleError(f"{file}: cannot read ({error.strerror})") from None


def _first_line(error: BaseException) -> str:
    return str(error).strip().partition("\n")[0][:300]
