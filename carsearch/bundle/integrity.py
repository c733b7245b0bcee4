"""A bundle's integrity file, and reading a bundle's files within bounds.

``integrity.json``, written last, records the sha256 and size of every other file of the
bundle, ``model.json`` included; reading a bundle checks each file against it. It is a
checksum, not a signature: it catches a damaged, truncated or edited file, but whoever can
edit a file can rewrite the integrity file too.

Every file is opened once, checked to be a regular file (not a folder, a device such as
``/dev/zero`` behind a link, or a pipe) no larger than its kind's limit, then read in chunks
that stop at the limit, so no file makes a read unbounded.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carsearch.bundle.validate import check_names, parse_json
from carsearch.exceptions import BundleError

INTEGRITY = "integrity.json"
INTEGRITY_FORMAT = "carsearch-integrity"
#: The integrity file's size limit: a few lines per file.
MAX_INTEGRITY_BYTES = 1 << 20
#: Bytes read at a time.
CHUNK = 1 << 20


@dataclass(frozen=True)
class Digest:
    """A file's expected sha256 (hex) and size in bytes, and the file that records them."""

    sha256: str
    n_bytes: int
    source: str


def digest_record(file: Path) -> dict[str, Any]:
    """``{"sha256": ..., "bytes": ...}`` of a file being written."""
    hasher, size = hashlib.sha256(), 0
    with file.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            hasher.update(chunk)
            size += len(chunk)
    return {"sha256": hasher.hexdigest(), "bytes": size}


def seal_folder(folder: Path) -> Path:
    """Write ``folder``'s integrity file, listing every other file in it; call it last."""
    files = {
        file.name: digest_record(file)
        for file in sorted(folder.iterdir())
        if file.is_file() and file.name != INTEGRITY
    }
    record = {"format": INTEGRITY_FORMAT, "algorithm": "sha256", "files": files}
    target = folder / INTEGRITY
    target.write_bytes(json.dumps(record, indent=2).encode())
    return target


def read_seal(folder: Path) -> dict[str, Digest] | None:
    """Each file's digest as ``folder``'s integrity file records it; ``None`` without one
    (a bundle written before carsearch wrote integrity files).

    Raises:
        BundleError: the integrity file is not a regular file, too large, or malformed.
    """
    file = folder / INTEGRITY
    if not os.path.lexists(file):
        return None
    record = parse_json(read_checked(file, MAX_INTEGRITY_BYTES), file)
    if not isinstance(record, dict) or record.get("format") != INTEGRITY_FORMAT:
        raise BundleError(
            f"{file}: not a carsearch integrity file (no 'format': {INTEGRITY_FORMAT!r})"
        )
    if record.get("algorithm") != "sha256":
        raise BundleError(f"{file}: 'algorithm' must be 'sha256'")
    return digests(record.get("files"), file, "files")


def digests(value: Any, file: Path, field: str) -> dict[str, Digest]:
    """A ``{name: {"sha256": hex, "bytes": n}}`` record checked, as :class:`Digest` s."""
    check_names(value, file, field)
    result = {}
    for name, entry in value.items():
        digest = entry.get("sha256") if isinstance(entry, dict) else None
        size = entry.get("bytes") if isinstance(entry, dict) else None
        if not _is_sha256(digest) or type(size) is not int or size < 0:
            raise BundleError(
                f"{file}: field {field!r} is malformed: {name!r} needs a 'sha256' (64 hex "
                "digits) and a 'bytes' count"
            )
        result[name] = Digest(str(digest), size, file.name)
    return result


def read_checked(file: Path, limit: int, expected: Sequence[Digest] = ()) -> bytes:
    """The bytes of ``file`` (at most ``limit``), checked against each ``expected`` digest.

    Raises:
        BundleError: the file is missing, not a regular file, over ``limit``, or differs
            from a digest.
    """
    return b"".join(_checked_chunks(file, limit, expected))


def check_file(file: Path, limit: int, expected: Sequence[Digest]) -> None:
    """Check ``file`` against each ``expected`` digest, reading it in chunks, keeping none."""
    for _ in _checked_chunks(file, limit, expected):
        pass


def _checked_chunks(file: Path, limit: int, expected: Sequence[Digest]) -> Iterator[bytes]:
    hasher = hashlib.sha256()
    try:
        # Non-blocking, so that a pipe put in a file's place cannot stall the open.
        fd = os.open(file, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise BundleError(f"{file}: missing; the bundle is incomplete, export it again") from None
    except OSError as error:
        raise BundleError(f"{file}: cannot read ({error.strerror})") from None
    try:
        size = _checked_size(file, os.fstat(fd), limit, expected)
    except BundleError:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as stream:
        read = 0
        while read <= limit and (chunk := stream.read(min(CHUNK, limit + 1 - read))):
            read += len(chunk)
            hasher.update(chunk)
            yield chunk
    if read != size:  # it changed while being read
        raise BundleError(f"{file}: changed while being read ({size} bytes, then {read})")
    for digest in expected:
        if hasher.hexdigest() != digest.sha256:
            raise BundleError(
                f"{file}: its sha256 differs from the one {digest.source} records; {_CHANGED}"
            )


_CHANGED = "the file was changed since export, or comes from another bundle"


def _checked_size(file: Path, info: os.stat_result, limit: int, expected: Sequence[Digest]) -> int:
    if not stat.S_ISREG(info.st_mode):
        raise BundleError(
            f"{file}: not a regular file (a folder, a device or a pipe); a bundle holds files"
        )
    if info.st_size > limit:
        raise BundleError(
            f"{file}: {info.st_size} bytes, more than the {limit} a bundle's {file.name} may have"
        )
    for digest in expected:
        if info.st_size != digest.n_bytes:
            raise BundleError(
                f"{file}: {info.st_size} bytes where {digest.source} records "
                f"{digest.n_bytes}; {_CHANGED}"
            )
    return info.st_size


def _is_sha256(value: Any) -> bool:
    return (
        isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)
    )


def expected_digests(name: str, *records: dict[str, Digest]) -> list[Digest]:
    """The digests of file ``name`` that any of ``records`` holds."""
    return [record[name] for record in records if name in record]
