"""Writing a bundle's files atomically, and reading them back without unpickling anything."""

from __future__ import annotations

import copy
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from carsearch import plugins
from carsearch.bundle.format import (
    MANIFEST,
    ONNX,
    TORCHSCRIPT,
    WEIGHTS,
    make_manifest,
    manifest_schema,
    read_bytes,
    read_manifest,
    sha256,
)
from carsearch.bundle.portable import save_onnx, save_torchscript
from carsearch.data.prepare import Prepared
from carsearch.data.schema import Schema
from carsearch.exceptions import BundleError, PluginError
from carsearch.models.ensemble import Ensemble
from carsearch.training.refit import Refit


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


def read_weights(path: Path, manifest: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The ``state_dict`` in ``weights.pt``, after checking its sha256 against the manifest."""
    file = path / WEIGHTS
    data = read_bytes(file)
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
        plugin = plugins.instance("models", name)
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


def write_bundle(
    out: Path, *, prepared: Prepared, final: Refit, extra: dict[str, Any] | None = None
) -> Path:
    """Write the bundle of ``final`` to folder ``out``, the manifest last; returns ``out``.

    Only the bundle's own files are replaced (each atomically), so a half-written bundle
    fails its manifest's checksums instead of loading mixed files.
    """
    out = _make_folder(out).resolve()
    model = copy.deepcopy(final.model).cpu().eval()  # the refit's own model stays put
    codes = torch.as_tensor(prepared.x[prepared.split.test])
    with torch.inference_mode():
        predicted = model(codes).argmax(dim=1).numpy()
    buffer = out / (WEIGHTS + ".partial")
    torch.save(model.state_dict(), buffer)
    os.replace(buffer, out / WEIGHTS)
    portable = {
        "torchscript": save_torchscript(model, codes, out / TORCHSCRIPT),
        "onnx": save_onnx(model, codes, out / ONNX),
    }
    files = {WEIGHTS: _file_record(out / WEIGHTS)}
    for name, record in zip((TORCHSCRIPT, ONNX), portable.values(), strict=True):
        if record["file"]:
            files[name] = _file_record(out / name)
        else:
            (out / name).unlink(missing_ok=True)  # left by an earlier export
    manifest = {
        **make_manifest(prepared, final, predicted),
        **(extra or {}),
        **portable,
        "files": files,
    }
    _write_atomic(out / MANIFEST, json.dumps(manifest, indent=2).encode())
    return out


def _make_folder(out: Path) -> Path:
    if out.exists() and not out.is_dir():
        raise BundleError(f"{out}: exists and is not a folder; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _file_record(file: Path) -> dict[str, Any]:
    data = file.read_bytes()
    return {"sha256": sha256(data), "bytes": len(data)}


def _write_atomic(file: Path, data: bytes) -> None:
    staging = file.with_name(file.name + ".partial")
    staging.write_bytes(data)
    os.replace(staging, file)


def _first_line(error: BaseException) -> str:
    return str(error).strip().partition("\n")[0][:300]
