"""Names that become file and folder names: study names, storage names.

A study name is whatever the user typed (``--study ../x``, ``/abs/x``, ``.``); every file or
folder carsearch names after it goes through :func:`file_name`, so none of them can point
outside the folder it is meant for, and two different names never share one.
"""

from __future__ import annotations

import hashlib
import re

#: Characters of the longest name :func:`file_name` returns: with 4-byte UTF-8 characters and
#: the ``.NAME.partial-...`` staging prefix it stays under the common 255-byte limit.
MAX_LENGTH = 50
#: Separates a cleaned name from the hash of the original. It is not a character a name
#: keeps unchanged, so a cleaned name never equals a name that needed no cleaning.
HASH_MARK = "+"
_HASH_LENGTH = 10
_UNSAFE = re.compile(r"[^\w.-]")


def file_name(name: str) -> str:
    """``name`` as one safe file or folder name.

    The result has no path separator, is neither ``.`` nor ``..``, does not start with a dot,
    and has at most :data:`MAX_LENGTH` characters. A name that is already all that (letters,
    digits, ``_``, ``-`` and inner dots) is returned as it is; any other gets its characters
    outside those replaced by ``_``, is shortened if need be, and ends in ``+`` and a short
    hash of the original, so that two different names never give the same file name.

    Example:
        >>> file_name("car_evaluation")
        'car_evaluation'
        >>> file_name("../x")
        '_x+d6b96a97d1'
    """
    cleaned = _UNSAFE.sub("_", name).lstrip(".")
    if cleaned == name and 0 < len(name) <= MAX_LENGTH:
        return name
    digest = hashlib.sha256(name.encode("utf-8", errors="surrogatepass")).hexdigest()
    keep = MAX_LENGTH - _HASH_LENGTH - len(HASH_MARK)
    return f"{cleaned[:keep] or '_'}{HASH_MARK}{digest[:_HASH_LENGTH]}"
