"""Estimator members' models in a bundle: each one's text, in its library's own format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from carsearch.bundle.format import MANIFEST, MAX_FILE_BYTES, MEMBER_TEXT
from carsearch.bundle.integrity import Digest, digests, expected_digests, read_checked
from carsearch.exceptions import BundleError
from carsearch.models.network import Ensemble, Estimated


def read_member_texts(
    path: Path, manifest: dict[str, Any], seal: dict[str, Digest]
) -> dict[int, str]:
    """The estimator members' models (:data:`MEMBER_TEXT`), by member index, each checked
    against its digests as it is read."""
    recorded = digests(manifest["files"], path / MANIFEST, "files")
    texts = {}
    for index, name in manifest.get("member_files", {}).items():
        data = read_checked(path / name, MAX_FILE_BYTES, expected_digests(name, recorded, seal))
        try:
            texts[int(index)] = data.decode("utf-8")
        except UnicodeDecodeError:
            raise BundleError(f"{path / name}: not a model's text (not UTF-8)") from None
    return texts


def write_member_texts(folder: Path, model: Ensemble) -> dict[str, str]:
    """Each estimator member's model, as its library's text; member index to file name."""
    written = {}
    for index, member in enumerate(model.members):
        if isinstance(member, Estimated):
            name = MEMBER_TEXT.format(index)
            (folder / name).write_bytes(member.text.encode("utf-8"))
            written[str(index)] = name
    return written
