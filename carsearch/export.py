"""The export bundle of a study's best model: writing it, attaching it, finding it again.

``carsearch run`` ends with :func:`export_run`; ``carsearch export`` (:func:`export_study`)
refits a stored study's best trial with the study's own configuration and seeds, so it
writes the same model and test scores. The bundle's format is in :mod:`carsearch.bundle`.

By default a bundle goes to ``<folder of the SQLite file>/<study>/best/`` (so
``studies/<study>/best/`` for the default storage; ``studies/<study>/best/`` under the
working directory for database servers), and its files are also uploaded as Optuna artifacts
of the study to ``<that folder>/artifacts`` (``optuna-dashboard --artifact-dir`` shows them).
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import warnings
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import sqlalchemy
import torch
from sqlalchemy.engine import make_url

from carsearch.bundle import FORMAT, FORMAT_VERSION, MANIFEST, ONNX, TORCHSCRIPT, WEIGHTS, sha256
from carsearch.config import DEFAULT_STORAGE, RunConfig
from carsearch.data import Schema
from carsearch.device import device_label, resolve_device, set_threads
from carsearch.exceptions import BundleError, StudyError
from carsearch.plugins import describe
from carsearch.portable import save_onnx, save_torchscript
from carsearch.prepare import Prepared, prepare
from carsearch.refit import Refit, refit
from carsearch.storage import make_storage, sqlite_path
from carsearch.study import FINGERPRINT_ATTR, best_trial, stored_config

logger = logging.getLogger("carsearch")

#: Study user attribute: the absolute path of the latest bundle's folder.
BUNDLE_ATTR = "carsearch_bundle"
#: Study user attribute: the artifact store's folder, the trial, and each file's artifact id.
ARTIFACTS_ATTR = "carsearch_artifacts"


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_study` returns: the refit, the bundle's folder and a summary."""

    refit: Refit
    bundle: Path
    summary: dict[str, Any]


def export_study(
    study_name: str | None = None,
    *,
    storage: str = DEFAULT_STORAGE,
    out: str | Path | None = None,
    data: str | None = None,
    device: str | None = None,
) -> ExportResult:
    """Refit a stored study's best trial exactly as ``carsearch run`` did, and export it.

    Args:
        study_name: the study; may be left out when the storage holds only one.
        storage: the study's storage URL.
        out: the bundle's folder (default: see the module docstring).
        data: the data file, when it has moved since the search (its content must match).
        device: train on this device instead of the stored one (numbers may then differ).

    Raises:
        StudyError: no such study, no completed trial, or data other than the study's.

    Example:
        >>> from carsearch.export import export_study
        >>> export_study("tiny", storage="sqlite:///studies.db").bundle  # doctest: +SKIP
        PosixPath('studies/tiny/best')
    """
    study = open_existing(study_name, storage)
    changes = {"storage": storage, "data": data, "device": device, "out": out and str(out)}
    config = stored_config(study).replace(**{k: v for k, v in changes.items() if v is not None})
    if config.data is not None and not Path(config.data).is_file():
        raise StudyError(
            f"the data file of study {study.study_name!r}, {config.data}, is not here "
            "(searched from another folder?); pass it with --data"
        )
    set_threads(config.threads)
    torch_device = resolve_device(config.device)
    prepared = prepare(config)
    if study.user_attrs.get(FINGERPRINT_ATTR) not in (None, prepared.table.fingerprint()):
        raise StudyError(
            f"{prepared.table.source} is not the data study {study.study_name!r} was made from "
            "(its fingerprint differs); pass the original file with --data"
        )
    best = best_trial(study)
    final = refit(config, prepared, best.params, int(best.user_attrs["best_epoch"]), torch_device)
    bundle = export_run(study, config, prepared, best, final)
    summary = {
        "study": study.study_name,
        "storage": storage,
        "best_trial": best.number,
        "best_params": best.params,
        "best_epoch": best.user_attrs["best_epoch"],
        "device": device_label(torch_device),
        "refit_seeds": len(final.seeds),
        "test": final.test.as_dict(),
        "bundle": str(bundle),
    }
    return ExportResult(refit=final, bundle=bundle, summary=summary)


def export_run(
    study: optuna.Study,
    config: RunConfig,
    prepared: Prepared,
    best: optuna.trial.FrozenTrial,
    final: Refit,
) -> Path:
    """Write the bundle of ``final`` (to ``config.out`` or the default folder) and attach it."""
    out = Path(config.out) if config.out else default_bundle_dir(config.storage, study.study_name)
    manifest = {
        "study": study.study_name,
        "trial": best.number,
        "metric": config.metric,
        "best_value": best.value,
        "data_fingerprint": prepared.table.fingerprint(),
    }
    bundle = write_bundle(out, prepared=prepared, final=final, extra=manifest)
    publish(study, bundle, artifact_dir(config.storage), trial=best.number)
    logger.info("best model exported to %s", bundle)
    return bundle


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


def publish(study: optuna.Study, bundle: Path, store: Path, *, trial: int) -> None:
    """Record ``bundle`` on the study and upload its files as study artifacts.

    Study artifacts, not trial ones: Optuna refuses new attributes on a finished trial, and
    the bundle is the refit's product anyway; the trial's number is recorded with them.
    Files already uploaded with the same content are not uploaded again.
    """
    study.set_user_attr(BUNDLE_ATTR, str(bundle))
    store = store.resolve()
    store.mkdir(parents=True, exist_ok=True)
    artifact_store = optuna.artifacts.FileSystemArtifactStore(store)
    previous = study.user_attrs.get(ARTIFACTS_ATTR) or {}
    known = previous.get("files", {}) if previous.get("store") == str(store) else {}
    uploaded: dict[str, dict[str, str]] = {}
    for name in (MANIFEST, WEIGHTS, TORCHSCRIPT, ONNX):
        file = bundle / name
        if not file.is_file():
            continue
        digest = sha256(file.read_bytes())
        if known.get(name, {}).get("sha256") == digest:
            uploaded[name] = known[name]
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            artifact_id = optuna.artifacts.upload_artifact(
                artifact_store=artifact_store, file_path=str(file), study_or_trial=study
            )
        uploaded[name] = {"artifact_id": artifact_id, "sha256": digest}
    study.set_user_attr(ARTIFACTS_ATTR, {"store": str(store), "trial": trial, "files": uploaded})


def bundle_path(study: optuna.Study) -> Path | None:
    """The folder of the study's latest bundle; ``None`` if it has none or it was removed."""
    value = study.user_attrs.get(BUNDLE_ATTR)
    if not isinstance(value, str):
        return None
    path = Path(value)
    return path if (path / MANIFEST).is_file() else None


def default_bundle_dir(storage: str, study_name: str) -> Path:
    """``<studies folder>/<study>/best``; the study name made safe as one folder name."""
    safe = re.sub(r"[^\w.-]", "_", study_name).strip(".") or "_"
    return studies_dir(storage) / safe / "best"


def artifact_dir(storage: str) -> Path:
    """The artifact store of a storage's studies: ``<studies folder>/artifacts``."""
    return studies_dir(storage) / "artifacts"


def studies_dir(storage: str) -> Path:
    """The SQLite file's folder, or ``studies`` (relative) for other storages."""
    path = sqlite_path(make_url(storage))
    return path.parent if path is not None else Path("studies")


def open_existing(study_name: str | None, storage: str) -> optuna.Study:
    """Load a stored study by name (or the storage's only study), never creating one.

    Raises:
        StudyError: the SQLite file or the study does not exist; the message lists studies.
    """
    try:
        path = sqlite_path(make_url(storage))
    except sqlalchemy.exc.ArgumentError:
        raise StudyError(f"not a storage URL: {storage!r}") from None
    if path is not None and not path.is_file():
        raise StudyError(f"no study database at {path}")
    backend = make_storage(storage)
    names = optuna.study.get_all_study_names(storage=backend)
    if study_name is None and len(names) == 1:
        study_name = names[0]
    if study_name not in names:
        listed = ", ".join(repr(name) for name in names) or "none"
        wanted = "--study NAME is needed" if study_name is None else f"no study {study_name!r}"
        raise StudyError(f"{wanted} in {storage}; studies there: {listed}")
    return optuna.load_study(study_name=study_name, storage=backend)


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


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"
