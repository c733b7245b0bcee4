"""Where bundles go, and how a study records them (user attributes, Optuna artifacts).

By default a bundle goes to ``<studies folder>/<study>/best/`` (the folder of the SQLite
file, so ``studies/<study>/best/`` for the default storage; ``studies/`` under the working
directory for database servers), and its files are also uploaded as Optuna artifacts of the
study to ``<studies folder>/artifacts`` (``optuna-dashboard --artifact-dir`` shows them).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import optuna

from carsearch.bundle.format import MANIFEST, ONNX, TORCHSCRIPT, WEIGHTS, sha256
from carsearch.storage.urls import studies_dir

#: Study user attribute: the absolute path of the latest bundle's folder.
BUNDLE_ATTR = "carsearch_bundle"
#: Study user attribute: the artifact store's folder, the trial, and each file's artifact id.
ARTIFACTS_ATTR = "carsearch_artifacts"


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
