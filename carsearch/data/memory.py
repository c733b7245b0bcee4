"""Large tables: whether a file fits in memory, and giving freed memory back as it is read.

Measured on a 1,000,000-row x 30-column file (``bench/large.py``): reading it takes at most
:data:`READ_FACTOR` times its size (the text in Arrow strings, then the table); a search,
:data:`SEARCH_FACTOR` times in each worker (the table, its encoding, the training rows as
tensors, and PyTorch). A file that would need more than the machine has is refused before
it is read.

Arrow's allocator keeps the memory of freed arrays for reuse, and glibc's malloc keeps freed
heap memory: what the conversion allocates next (numpy arrays of numbers and codes) does not
come from the first, and is fragmented by the second. Without this, the text of a file read
and already converted would stay counted against the machine. (Dask's workers trim memory
the same way.)
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa

from carsearch.exceptions import DataError

#: Peak memory of reading a file (``read``, ``describe``), in multiples of its size.
READ_FACTOR = 4
#: Peak memory of searching on a file, in multiples of its size, per worker process.
SEARCH_FACTOR = 6
_CGROUP = Path("/sys/fs/cgroup")


def check_fits(path: Path, factor: float, purpose: str) -> None:
    """Refuse a file that needs more than ``factor`` times its size, when the machine has
    less memory available (known on Linux; elsewhere nothing is refused).

    Raises:
        DataError: naming the file, the memory it needs and the memory available.
    """
    try:
        size = path.stat().st_size
    except OSError:
        return  # reading it says what is wrong
    available = available_memory()
    if available is None or size * factor <= available:
        return
    raise DataError(
        f"{path}: a {_gb(size)} file needs about {_gb(size * factor)} of memory {purpose}, "
        f"and this machine has {_gb(available)} available; use a sample of its rows"
    )


def available_memory() -> int | None:
    """Bytes this process may still take: the system's available memory, or less under a
    cgroup limit (a container's); ``None`` where unknown."""
    found = [_meminfo_available(), _cgroup_room()]
    known = [value for value in found if value is not None]
    return min(known) if known else None


def _meminfo_available() -> int | None:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return None


def _cgroup_room() -> int | None:
    with contextlib.suppress(OSError, ValueError):
        limit = (_CGROUP / "memory.max").read_text().strip()
        if limit != "max":
            return int(limit) - int((_CGROUP / "memory.current").read_text())
    return None


def _gb(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.1f} GB"


def give_back_memory() -> None:
    """Return to the system the memory that Arrow and malloc hold for freed arrays."""
    pa.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``; ``None`` on systems without it (macOS, musl, Windows)."""
    name = ctypes.util.find_library("c")
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError, TypeError):
        return None
    return trim
