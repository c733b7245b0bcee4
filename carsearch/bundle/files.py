"""Writing a bundle's files atomically, and reading them back without unpickling anything."""

from __future__ import annotations

import copy
import io
import json
import logging
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from carsearch import plugins
from carsearch.bundle.folders import check_out_folder, replace_folder, sibling
from carsearch.bundle.format import (
    MANIFEST,
    MAX_FILE_BYTES,
    ONNX,
    TORCHSCRIPT,
    WEIGHTS,
    carsearch_version,
    make_manifest,
    open_manifest,
)
from carsearch.bundle.integrity import (
    INTEGRITY,
    Digest,
    check_file,
    digest_record,
    digests,
    expected_digests,
    read_checked,
    seal_folder,
)
from carsearch.bundle.portable import save_onnx, save_torchscript
from carsearch.bundle.texts import read_member_texts, write_member_texts
from carsearch.bundle.validate import manifest_schema
from carsearch.data.prepare import Prepared
from carsearch.data.schema import CLASSIFICATION, Schema
from carsearch.ensemble.decision import decide
from carsearch.exceptions import BundleError, PluginError
from carsearch.models.network import Ensemble, NetworkSpec, build_network, load_estimated
from carsearch.training.refit import Refit

logger = logging.getLogger("carsearch")
#: A shell (see :func:`build_shell`) registers at most this many times the weights' tensors.
SHELL_SLACK = 4


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

    Every file is checked against the bundle's integrity file (a bundle written before
    carsearch wrote one loads with a warning), ``model.json`` against its bounds, and the
    model is first built without memory (on torch's ``meta`` device) to check that the
    weights fit it, so a manifest cannot make loading allocate more than its weights hold.

    Raises:
        BundleError: a file is missing, changed or too large, the manifest is malformed, out
            of bounds or of an unknown format version, or the weights do not fit the
            manifest's parameters.
        PluginError: the bundle's model plugin is not installed.
    """
    path = Path(path)
    manifest, seal = open_manifest(path)
    if seal is None:
        logger.warning(
            "%s: no %s (a bundle written before carsearch wrote one): %s is not checked "
            "against changes; export the study again to add it",
            path,
            INTEGRITY,
            MANIFEST,
        )
    schema = manifest_schema(manifest, path / MANIFEST)
    state = read_weights(path, check_files(path, manifest, seal or {}))
    n_members = len({key.split(".")[1] for key in state if key.startswith("members.")})
    if n_members != manifest["n_members"]:
        raise BundleError(
            f"{path / WEIGHTS}: holds {n_members} ensemble members, {MANIFEST} says "
            f"{manifest['n_members']}"
        )
    check_plugin(manifest, path)
    texts = read_member_texts(path, manifest, seal or {})
    shell = build_shell(manifest, schema, path, len(state), texts)
    if shell is not None:
        load_weights(shell, state, manifest, path)
    model = build_ensemble(manifest, schema, path, texts)
    load_weights(model, state, manifest, path)
    return Bundle(path=path, manifest=manifest, schema=schema, model=model.eval())


def check_files(path: Path, manifest: dict[str, Any], seal: dict[str, Digest]) -> list[Digest]:
    """Check every file that the manifest or the integrity file records, but the manifest, the
    weights and the estimator members' texts; returns the weights' digests, checked when they
    are read (as the texts are, by :func:`read_member_texts`).

    A file the integrity file lists must be there; one only the manifest lists may be
    absent (a version-1 bundle's TorchScript and ONNX files, which loading does not need).
    """
    recorded = digests(manifest["files"], path / MANIFEST, "files")
    if WEIGHTS not in recorded:
        raise BundleError(f"{path / MANIFEST}: field 'files' lists no {WEIGHTS}")
    read_later = {MANIFEST, WEIGHTS, *manifest.get("member_files", {}).values()}
    for name in sorted((set(recorded) | set(seal)) - read_later):
        file = path / name
        if name in seal or os.path.lexists(file):
            check_file(file, MAX_FILE_BYTES, expected_digests(name, recorded, seal))
    return expected_digests(WEIGHTS, recorded, seal)


def read_weights(path: Path, expected: list[Digest]) -> dict[str, torch.Tensor]:
    """The ``state_dict`` in ``weights.pt``, after checking it against ``expected``.

    torch's safe unpickler refuses anything but tensors; its warnings (of a pickle protocol
    it did not expect, say) are kept from the user, who gets one error line instead.
    """
    file = path / WEIGHTS
    data = read_checked(file, MAX_FILE_BYTES, expected)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # the safe unpickler raises many types on bad or hostile bytes
        raise BundleError(
            f"{file}: not a weights file torch can load safely ({type(error).__name__}); "
            "it holds more than tensors, or is damaged"
        ) from None
    if not isinstance(state, dict) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in state.items()
    ):
        raise BundleError(f"{file}: not a state_dict (a mapping of names to tensors)")
    return state


def check_plugin(manifest: dict[str, Any], path: Path) -> None:
    """The model plugin of each of the manifest's configurations loads.

    Raises:
        PluginError: one does not, with what the bundle was made with.
    """
    for part in manifest.get("members") or [manifest]:
        try:
            plugins.instance("models", part["model"])
        except PluginError as error:
            raise PluginError(
                f"{path}: the bundle's model plugin cannot be loaded: {error}{_made_with(manifest)}"
            ) from None


def build_ensemble(
    manifest: dict[str, Any], schema: Schema, path: Path, texts: dict[int, str] | None = None
) -> Ensemble:
    """A fresh ensemble of the manifest's model plugin, parameters and size; estimator
    members are built from their ``texts`` (:func:`read_member_texts`)."""
    parts = manifest.get("members") or [manifest]  # version 3: several configurations
    name = manifest["model"]
    texts = texts or {}
    try:
        members = [
            _member(part, schema, texts.get(index))
            for index, part in enumerate(p for p in parts for _ in range(p["n_members"]))
        ]
    except _TooLarge:
        raise
    except Exception as error:  # a plugin's build may fail in any way on params it never made
        raise BundleError(
            f"{path / MANIFEST}: its params do not build a {name!r} model "
            f"({type(error).__name__}: {_first_line(error)})"
        ) from None
    mean, std = (float(v) for v in manifest.get("target_scale", [0.0, 1.0]))
    weights = None
    if "members" in manifest:
        weights = [p["weight"] / p["n_members"] for p in parts for _ in range(p["n_members"])]
        weights = [w / sum(weights) for w in weights]
    return Ensemble(members, task=schema.task, scale=(mean, std), weights=weights)


def _member(part: dict[str, Any], schema: Schema, text: str | None) -> nn.Module:
    """A fresh network of ``part``, or the estimator member saved as ``text``."""
    if text is None:
        return build_network(_spec(part), schema)
    return load_estimated(str(part["model"]), text, schema)


def _spec(part: dict[str, Any]) -> NetworkSpec:
    """The network spec of a manifest (or of one configuration of a version-3 one)."""
    dims = tuple(int(dim) for dim in part["embedding_dims"])
    return NetworkSpec(part["model"], part["params"], dims, part.get("numeric_state"))


def build_shell(
    manifest: dict[str, Any],
    schema: Schema,
    path: Path,
    n_tensors: int,
    texts: dict[int, str] | None = None,
) -> Ensemble | None:
    """The manifest's ensemble on torch's ``meta`` device: shapes without memory, to check
    the weights against before the real build. It stops once it has registered more
    parameters and buffers than :data:`SHELL_SLACK` times the weights' ``n_tensors`` (a
    module may register one twice, or keep a buffer out of its weights), so that a
    manifest's huge counts (of layers, blocks...) cost no time either.
    ``None`` for a plugin that cannot build on ``meta``: the real build checks that one.

    Raises:
        BundleError: the manifest's model needs more tensors than the weights hold.
    """
    created = 0

    def count(module: nn.Module, name: str, tensor: torch.Tensor | None) -> None:
        nonlocal created
        if tensor is not None and tensor.is_meta:
            created += 1
            if created > SHELL_SLACK * n_tensors + 16:
                raise _TooLarge

    hooks = [
        nn.modules.module.register_module_parameter_registration_hook(count),
        nn.modules.module.register_module_buffer_registration_hook(count),
    ]
    try:
        with torch.device("meta"):
            return build_ensemble(manifest, schema, path, texts)
    except _TooLarge:
        raise BundleError(
            f"{path / WEIGHTS}: the weights do not fit the model that {MANIFEST} describes "
            f"({manifest['model']!r} with its params): it has more than the weights' "
            f"{n_tensors} tensors"
        ) from None
    except BundleError:
        return None
    finally:
        for hook in hooks:
            hook.remove()


class _TooLarge(Exception):
    """A model on ``meta`` outgrew the weights (raised through the plugin's build)."""


def load_weights(
    model: Ensemble, state: dict[str, torch.Tensor], manifest: dict[str, Any], path: Path
) -> None:
    """Load ``state`` into ``model`` (on ``meta``: only check that it fits)."""
    if manifest["format_version"] == 1:
        state = upgrade_v1_state(state, model, manifest, path)
    try:
        model.load_state_dict(state, strict=True, assign=model.scale.is_meta)
    except RuntimeError as error:
        raise BundleError(
            f"{path / WEIGHTS}: the weights do not fit the model that {MANIFEST} describes "
            f"({manifest['model']!r} with its params): {_first_line(error)}"
        ) from None


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
        made = sibling(out, "partial")
        made.mkdir()  # a fresh name: fails rather than reuse a folder carsearch did not make
        staging = made
        manifest = _write_files(staging, prepared, final, extra or {})
        (staging / MANIFEST).write_bytes(json.dumps(manifest, indent=2).encode())
        seal_folder(staging)  # last: it lists every other file
        replace_folder(staging, out)
    except OSError as error:
        kept = "the previous bundle there is unchanged" if out.exists() else "nothing was written"
        raise BundleError(
            f"cannot write the bundle to {out}: {error.strerror or error}; {kept}"
        ) from error
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)  # made above: only carsearch's files
    return out


def _write_files(
    folder: Path, prepared: Prepared, final: Refit, extra: dict[str, Any]
) -> dict[str, Any]:
    """Weights, TorchScript and ONNX into ``folder``; returns the manifest describing them."""
    model = copy.deepcopy(final.model).cpu().eval()  # the refit's own model stays put
    example = inputs_of_test_rows(prepared)
    with torch.inference_mode():
        predictions = model(*example)
    if predictions.dim() == 2:  # the class the bundle's decision picks
        predicted = decide(predictions.numpy(), extra.get("decision_weights"))
    else:
        predicted = predictions.numpy()
    weights = io.BytesIO()  # torch.save reports a full disk as a RuntimeError; write_bytes
    torch.save(model.state_dict(), weights)  # as the OSError write_bundle turns into one line
    (folder / WEIGHTS).write_bytes(weights.getvalue())
    output = "probabilities" if prepared.final.schema.task == CLASSIFICATION else "prediction"
    scale = 1.0 if output == "probabilities" else float(final.model.scale[1])
    portable = {
        "torchscript": save_torchscript(model, example, folder / TORCHSCRIPT, scale=scale),
        "onnx": save_onnx(model, example, folder / ONNX, output=output, scale=scale),
    }
    member_files = write_member_texts(folder, model)
    files = {
        name: digest_record(folder / name)
        for name in (WEIGHTS, TORCHSCRIPT, ONNX, *member_files.values())
        if (folder / name).is_file()
    }
    manifest = {**make_manifest(prepared, final, predicted), **extra, **portable, "files": files}
    return {**manifest, "member_files": member_files} if member_files else manifest


def inputs_of_test_rows(prepared: Prepared) -> tuple[torch.Tensor, torch.Tensor]:
    """The test rows' ``(codes, numbers)``, encoded with the refit's schema."""
    rows = prepared.split.test
    return (
        torch.as_tensor(prepared.final.codes[rows]),
        torch.as_tensor(prepared.final.numbers[rows]),
    )


def _first_line(error: BaseException) -> str:
    """The error's first line that says something: torch's state_dict errors begin with
    ``Error(s) in loading state_dict for Ensemble:``, the detail on the next line."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):
        return lines[1][:300]
    return lines[0][:300] if lines else ""
