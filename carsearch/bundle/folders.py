"""Where a bundle may be written: never over a folder of the user's files.

A bundle replaces its folder whole, so :func:`check_out_folder` accepts only a missing or
empty folder or an earlier carsearch bundle, and every folder carsearch makes next to it
(staging, the old bundle moved aside) has a fresh name of its own: what is removed is only
what carsearch wrote.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

from carsearch.bundle.format import FORMAT, MANIFEST
from carsearch.bundle.integrity import read_checked
from carsearch.bundle.validate import parse_json
from carsearch.exceptions import BundleError

#: The most of a ``model.json`` read to tell whether a folder holds a bundle.
MAX_MANIFEST_BYTES = 1 << 20


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
        record = parse_json(read_checked(file, MAX_MANIFEST_BYTES), file)
    except BundleError:  # missing, not a regular file, too large, not JSON, too deep
        return False
    return isinstance(record, dict) and record.get("format") == FORMAT


def replace_folder(staging: Path, out: Path) -> None:
    """Rename ``staging`` to ``out``; an old ``out`` (checked again: a bundle) is first moved
    aside to a new name of its own, then removed."""
    if not check_out_folder(out).exists():
        os.replace(staging, out)
        return
    old = sibling(out, "old")
    os.rename(out, old)
    os.replace(staging, out)
    shutil.rmtree(old, ignore_errors=True)


def sibling(out: Path, kind: str) -> Path:
    """A fresh hidden name next to ``out`` (``.best.partial-PID-RANDOM``): never one that a
    folder already has, so what is later removed there is only what carsearch put there."""
    return out.with_name(f".{out.name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}")
