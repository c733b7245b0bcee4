"""Writing a bundle's files atomically, and reading them back without unpickling anything."""

from __future__ import annotations

import copy
import io
import json
import os
import secrets
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from carsearch import plugins
from carsearch.bundle.format import (
    FORMAT,
    MANIFEST,
    ONNX,
    TORCHSCRIPT,
    WEIGHTS,
    carsearch_version,
    make_manifest,
    manifest_schema,
    read_bytes,
    read_manifest,
    sha256,
)
from carsearch.bundle.portable import save_onnx, save_torchscript
from carsearch.data.prepare import Prepared
from carsearch.data.schema import CLASSIFICATION, Schema
from carsearch.exceptions import BundleError, PluginError
from carsearch.models.network import Ensemble, NetworkSpec, build_network
from carsearch.training.refit import Refit

#: The most of a ``model.json`` read to tell whether a folder holds a bundle.
MAX_MANIFEST_BYTES = 1 << 20


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
    """Read and check the bundle in folder ``path`` (format version 1 or 2).

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
    if manifest["format_version"] == 1:
        state = upgrade_v1_state(state, model, manifest, path)
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
        plugins.instance("models", name)
    except PluginError as error:
        raise PluginError(
            f"{path}: the bundle's model plugin cannot be loaded: {error}{_made_with(manifest)}"
        ) from None
    spec = NetworkSpec(
        name,
        manifest["params"],
        tuple(int(dim) for dim in manifest["embedding_dims"]),
        manifest.get("numeric_state"),
    )
    try:
        members = [build_network(spec, schema) for _ in range(manifest["n_members"])]
    except (KeyError, ValueError, TypeError, AssertionError, IndexError) as error:
        raise BundleError(
            f"{path / MANIFEST}: its params do not build a {name!r} model ({error!r})"
        ) from None
    if not members:
        raise BundleError(f"{path / MANIFEST}: 'n_members' must be at least 1")
    mean, std = (float(v) for v in manifest.get("target_scale", [0.0, 1.0]))
    return Ensemble(members, task=schema.task, scale=(mean, std))


def upgrade_v1_state(
    state: dict[str, torch.Tensor], model: Ensemble, manifest: dict[str, Any], path: Path
) -> dict[str, torch.Tensor]:
    """A version-1 ``state_dict`` (carsearch 0.1's built-in ``mlp``) under today's names.

    0.1's ``EmbeddingMLP`` kept its embeddings and layers at the top of each member; today
    the embeddings sit in the member's input block and the layers in its backbone. The
    tensors are the same.
    """
    if manifest["model"] != "mlp":
        raise BundleError(
            f"{path}: a version-1 bundle of model {manifest['model']!r} cannot be read by "
            f"carsearch {carsearch_version()}; export the study again, or install carsearch 0.1"
        )
    upgraded = dict(model.state_dict())  # what 0.1 lacked keeps its fresh value (scale)
    for key, value in state.items():
        member, _, rest = key.partition(".")[2].partition(".")
        part = "backbone." if rest.startswith("layers.") else "inputs."
        upgraded[f"members.{member}.{part}{rest}"] = value
    return upgraded


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
    """Write the bundle of ``final`` to folder ``out`` atomically; returns ``out`` (resolved).

    ``out`` must be missing, empty or a carsearch bundle (:func:`check_out_folder`). The
    files are written to a staging folder next to ``out``, which then replaces ``out`` by
    renames: a crash or a full disk while writing leaves the previous bundle as it was.

    Raises:
        BundleError: ``out`` holds something else than a bundle (nothing there is touched),
            or a file could not be written (a full disk, say; ``out`` is unchanged).
    """
    out = check_out_folder(out)
    staging: Path | None = None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        made = _sibling(out, "partial")
        made.mkdir()  # a fresh name: fails rather than reuse a folder carsearch did not make
        staging = made
        manifest = _write_files(staging, prepared, final, extra or {})
        (staging / MANIFEST).write_bytes(json.dumps(manifest, indent=2).encode())
        _replace_folder(staging, out)
    except OSError as error:
        kept = "the previous bundle there is unchanged" if out.exists() else "nothing was written"
        raise BundleError(
            f"cannot write the bundle to {out}: {error.strerror or error}; {kept}"
        ) from error
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)  # made above: only carsearch's files
    return out


def check_out_folder(out: str | Path) -> Path:
    """``out`` resolved, if a bundle may be written there: a missing or empty folder, or a
    carsearch bundle (a ``model.json`` of format ``carsearch-bundle``), which it replaces.

    Raises:
        BundleError: ``out`` is a file, or a folder holding anything else (the working
            folder, a folder of the user's files, the studies folder); nothing is touched.
    """
    out = Path(out).resolve()
    if not out.exists():
        return out
    if not out.is_dir():
        raise BundleError(f"{out}: exists and is not a folder; choose another --out")
    if any(out.iterdir()) and not is_bundle_folder(out):
        raise BundleError(
            f"{out}: holds files that are not a carsearch bundle (no {MANIFEST} of format "
            f"{FORMAT!r}); a bundle replaces its folder, so choose a new or empty one for --out"
        )
    return out


def is_bundle_folder(folder: Path) -> bool:
    """Whether ``folder`` holds a carsearch bundle's ``model.json`` (read at most
    :data:`MAX_MANIFEST_BYTES` of it; the rest of the bundle is not checked)."""
    file = folder / MANIFEST
    try:
        if not stat.S_ISREG(file.stat().st_mode):
            return False  # a FIFO or a device would block or never end
        with file.open("rb") as handle:
            data = handle.read(MAX_MANIFEST_BYTES + 1)
        record = json.loads(data) if len(data) <= MAX_MANIFEST_BYTES else None
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(record, dict) and record.get("format") == FORMAT


def _write_files(
    folder: Path, prepared: Prepared, final: Refit, extra: dict[str, Any]
) -> dict[str, Any]:
    """Weights, TorchScript and ONNX into ``folder``; returns the manifest describing them."""
    model = copy.deepcopy(final.model).cpu().eval()  # the refit's own model stays put
    example = inputs_of_test_rows(prepared)
    with torch.inference_mode():
        predictions = model(*example)
    predicted = predictions.argmax(dim=1).numpy() if predictions.dim() == 2 else predictions.numpy()
    weights = io.BytesIO()  # torch.save reports a full disk as a RuntimeError; write_bytes
    torch.save(model.state_dict(), weights)  # as the OSError write_bundle turns into one line
    (folder / WEIGHTS).write_bytes(weights.getvalue())
    output = "probabilities" if prepared.final.schema.task == CLASSIFICATION else "prediction"
    scale = 1.0 if output == "probabilities" else float(final.model.scale[1])
    portable = {
        "torchscript": save_torchscript(model, example, folder / TORCHSCRIPT, scale=scale),
        "onnx": save_onnx(model, example, folder / ONNX, output=output, scale=scale),
    }
    files = {
        name: _file_record(folder / name)
        for name in (WEIGHTS, TORCHSCRIPT, ONNX)
        if (folder / name).is_file()
    }
    return {**make_manifest(prepared, final, predicted), **extra, **portable, "files": files}


def inputs_of_test_rows(prepared: Prepared) -> tuple[torch.Tensor, torch.Tensor]:
    """The test rows' ``(codes, numbers)``, encoded with the refit's schema."""
    rows = prepared.split.test
    return (
        torch.as_tensor(prepared.final.codes[rows]),
        torch.as_tensor(prepared.final.numbers[rows]),
    )


def _replace_folder(staging: Path, out: Path) -> None:
    """Rename ``staging`` to ``out``; an old ``out`` (checked again: a bundle) is first moved
    aside to a new name of its own, then removed."""
    if not check_out_folder(out).exists():
        os.replace(staging, out)
        return
    old = _sibling(out, "old")
    os.rename(out, old)
    os.replace(staging, out)
    shutil.rmtree(old, ignore_errors=True)


def _sibling(out: Path, kind: str) -> Path:
    """A fresh hidden name next to ``out`` (``.best.partial-PID-RANDOM``): never one that a
    folder already has, so what is later removed there is only what carsearch put there."""
    return out.with_name(f".{out.name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}")


def _file_record(file: Path) -> dict[str, Any]:
    data = file.read_bytes()
    return {"sha256": sha256(data), "bytes": len(data)}


def _first_line(error: BaseException) -> str:
    return str(error).strip().partition("\n")[0][:300]
