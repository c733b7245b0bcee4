"""A validated table: its feature columns by kind, and the name of its target column.

Categorical columns hold stripped strings as pandas categoricals (a code per row and each
distinct value once: a tenth of the strings' memory on a large file; a missing value is the
category ``<missing>``),
numeric columns float32, what the models compute in (a missing value is NaN), the target its
class names or (regression) its numbers as float64.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, TypedDict

import numpy as np
import pandas as pd
import pyarrow as pa

from carsearch.data.kinds import (
    CATEGORICAL,
    MISSING_TOKENS,
    NUMERIC,
    ColumnKind,
    Overrides,
    check_overrides,
    column_kind,
    warn_dropped,
)
from carsearch.data.memory import give_back_memory
from carsearch.data.schema import CLASSIFICATION, MISSING
from carsearch.data.target import decide_task
from carsearch.exceptions import DataError

if TYPE_CHECKING:  # typing.Unpack is Python 3.11's; annotations are not evaluated
    from typing_extensions import Unpack

logger = logging.getLogger("carsearch")

#: pandas' ``str`` type, over Arrow strings.
_TEXT = pd.StringDtype("pyarrow", na_value=np.nan)
#: Rows hashed at a time by :meth:`Table.legacy_fingerprint`, to bound its memory.
_HASH_CHUNK = 100_000
#: What starts a fingerprint of :meth:`Table.fingerprint`'s definition; one without it is a
#: :meth:`Table.legacy_fingerprint`.
FINGERPRINT_PREFIX = "v2:"


@dataclass(frozen=True)
class Table:
    """A table ready to encode: kept features by kind, dropped ones with their reasons.

    Example:
        >>> import pandas as pd
        >>> frame = pd.DataFrame({"size": ["1.5", "2", "", "4"], "t": ["a", "b", "a", "b"]})
        >>> make_table(frame, "t", source="example").kinds
        {'size': 'numeric'}
    """

    frame: pd.DataFrame
    target: str
    source: str
    kinds: dict[str, str] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)
    task: str = CLASSIFICATION
    first_line: int = 2
    #: What to know of a kept column: numbers in a spelling read as categories.
    notes: dict[str, str] = field(default_factory=dict)
    #: Each column's :func:`column_digest`, taken from its values as read.
    digests: dict[str, str] = field(default_factory=dict)

    @property
    def features(self) -> pd.DataFrame:
        return self.frame[list(self.kinds)]

    @property
    def categorical(self) -> list[str]:
        return [name for name, kind in self.kinds.items() if kind == CATEGORICAL]

    @property
    def numeric(self) -> list[str]:
        return [name for name, kind in self.kinds.items() if kind == NUMERIC]

    def class_counts(self) -> dict[str, int]:
        counts = self.frame[self.target].value_counts().sort_index()
        return {str(label): int(n) for label, n in counts.items()}

    def target_histogram(self, bins: int = 30) -> dict[str, list[float]]:
        """A numeric target's histogram: ``bins`` equal-width bins' edges and counts."""
        counts, edges = np.histogram(self.frame[self.target].to_numpy(np.float64), bins=bins)
        return {"edges": edges.tolist(), "counts": counts.astype(float).tolist()}

    def describe(self) -> dict[str, object]:
        """What a study records of its data: source, rows, target, kinds, and the class
        counts or (numbers) the target's histogram."""
        classes = self.task == CLASSIFICATION
        return {
            "source": self.source,
            "rows": len(self.frame),
            "target": self.target,
            "task": self.task,
            "kinds": dict(self.kinds),
            "dropped": dict(self.dropped),
            "class_counts": self.class_counts() if classes else {},
            "target_histogram": {} if classes else self.target_histogram(),
        }

    def take(self, rows: np.ndarray) -> Table:
        """The table of ``rows``, in that order; its fingerprint stays the one of the table as
        read (the digests are of the columns as read)."""
        digests = {
            str(name): self.digests.get(str(name)) or column_digest(self.frame[name])
            for name in self.frame.columns
        }
        frame = self.frame.take(rows).reset_index(drop=True)
        return replace(self, frame=frame, digests=digests)

    def fingerprint(self) -> str:
        """A sha256 of the table's content and column order (not of the file's bytes),
        prefixed :data:`FINGERPRINT_PREFIX`.

        Made of each column's digest (:func:`column_digest`), taken as the table was made,
        before numbers became float32: a change below float32's precision is a change.
        """
        digest = hashlib.sha256("\x1f".join(self.frame.columns).encode())
        for name in self.frame.columns:
            known = self.digests.get(name)
            digest.update((known or column_digest(self.frame[name])).encode())
        return FINGERPRINT_PREFIX + digest.hexdigest()

    def legacy_fingerprint(self) -> str:
        """The fingerprint of carsearch up to 0.2 (studies made then store it).

        Row by row: the column names joined by ``\\x1f``, then each row as ``\\x1e`` and its
        cells joined by ``\\x1f`` (numbers as Python writes them, ``nan`` when missing), so a
        table of strings hashes as carsearch 0.1 hashed it. Exact for numbers read as
        float64 (``read_table(..., exact=True)``).
        """
        digest = hashlib.sha256("\x1f".join(self.frame.columns).encode())
        for start in range(0, len(self.frame), _HASH_CHUNK):
            text = self.frame.iloc[start : start + _HASH_CHUNK].astype(str)
            rows = text.iloc[:, 0].str.cat([text[name] for name in text.columns[1:]], sep="\x1f")
            digest.update(("\x1e" + rows).str.cat().encode())
        return digest.hexdigest()


def column_digest(values: pd.Series | np.ndarray) -> str:
    """A sha256 of a column: its numbers' float64 bytes (every NaN alike), or its strings'
    lengths and UTF-8 bytes; never the text of numbers."""
    if isinstance(values, np.ndarray) or pd.api.types.is_float_dtype(values):
        numbers = np.asarray(values, dtype="<f8")
        canonical = np.where(np.isnan(numbers), np.nan, numbers)
        return hashlib.sha256(b"numbers" + canonical.tobytes()).hexdigest()
    strings = pa.array(values, type=pa.large_string(), from_pandas=True)
    lengths, data = hashlib.sha256(b"text"), hashlib.sha256()
    for chunk in strings.chunks if isinstance(strings, pa.ChunkedArray) else [strings]:
        offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int64)
        offsets = offsets[chunk.offset : chunk.offset + len(chunk) + 1]
        lengths.update(np.diff(offsets).tobytes())
        data.update(chunk.buffers()[2][offsets[0] : offsets[-1]] if len(chunk) else b"")
    digest = hashlib.sha256(lengths.digest() + data.digest())
    return digest.hexdigest()


class KindOptions(TypedDict, total=False):
    """The optional keywords of :func:`make_table` and :func:`table_from_columns`."""

    numeric: Sequence[str]
    categorical: Sequence[str]
    task: str
    first_line: int
    exact: bool


def make_table(
    frame: pd.DataFrame, target: str | None = None, *, source: str, **options: Unpack[KindOptions]
) -> Table:
    """Validate a DataFrame of strings as a table, deciding each feature column's kind and
    whether the target is classes or numbers (see :mod:`carsearch.data.target`).

    Args:
        frame: the cells as read, strings (or values that print as the file wrote them).
        target: the target column's name, or its 1-based number; default the last column.
        source: what to call the table in messages (its file's path).
        numeric: columns to read as numbers whatever the rule says.
        categorical: columns to read as categories whatever the rule says (kept even when
            the rule would drop them).
        task: ``auto``, ``classification`` or ``regression``.
        first_line: the file line of the first row, for messages (2 after a header).
        exact: keep numbers as float64 (for :meth:`Table.legacy_fingerprint`), not float32.

    Raises:
        DataError: naming the source and the column, value or rule that failed.
    """
    check_shape([str(name) for name in frame.columns], len(frame), source)
    cells: dict[str, pd.Series | pa.ChunkedArray] = {
        str(name): frame[name].reset_index(drop=True) for name in frame.columns
    }
    return table_from_columns(cells, target, source=source, **options)


def table_from_columns(
    cells: dict[str, pd.Series | pa.ChunkedArray],
    target: str | None = None,
    *,
    source: str,
    numeric: Sequence[str] = (),
    categorical: Sequence[str] = (),
    task: str = "auto",
    first_line: int = 2,
    exact: bool = False,
) -> Table:
    """:func:`make_table` of ``cells`` (column name -> cells as read, a Series or Arrow
    strings, in file order, checked by :func:`check_shape`), each column taken out of the
    dict as it is converted: a large file's text is freed column by column, not held
    beside the whole table.
    """
    names = list(cells)
    target = resolve_target(names, target, source)
    task, target_values = decide_task(
        stripped(as_text(cells.pop(target))),
        task,
        name=target,
        source=source,
        first_line=first_line,
    )
    overrides = Overrides(numeric, categorical)
    check_overrides(names, target, source, overrides)
    built = _Columns(source, exact)
    for name in names:
        if name == target:
            built.keep(name, target_values, column_digest(target_values))
            continue
        values = stripped(as_text(cells.pop(name)))
        found = column_kind(name, values, source=source, overrides=overrides, first_line=first_line)
        built.add(name, values, found)
        del values
        give_back_memory()
    warn_dropped(source, built.dropped)
    return Table(
        pd.DataFrame(built.kept),
        target,
        source,
        built.kinds,
        built.dropped,
        task,
        first_line,
        built.notes,
        built.digests,
    )


@dataclass
class _Columns:
    """The columns of a table being made, with their kinds, notes and digests."""

    source: str
    exact: bool
    kept: dict[str, pd.Series] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)

    def keep(self, name: str, values: pd.Series, digest: str) -> None:
        self.kept[name], self.digests[name] = values, digest

    def add(self, name: str, values: pd.Series, found: ColumnKind) -> None:
        """Keep a feature column as its kind says (numbers as float32 unless ``exact``), or
        record why it is dropped."""
        if found.kind is None:
            self.dropped[name] = str(found.reason)
            return
        self.kinds[name] = found.kind
        if found.numbers is None:
            categories = missing_to_category(values)
            digest = column_digest(categories)
            self.keep(name, categories.astype("category"), digest)
        else:
            numbers = found.numbers if self.exact else found.numbers.astype(np.float32)
            self.keep(name, pd.Series(numbers, copy=False), column_digest(found.numbers))
        if found.odd is not None:
            self.notes[name] = found.odd.note()
            logger.warning("%s", found.odd.warning(self.source, name, found.kind))


def resolve_target(columns: Sequence[str], target: str | None, source: str) -> str:
    """The target column's name: the one given, the 1-based column number given, or the last."""
    if target is None:
        return columns[-1]
    if target in columns:
        return target
    if target.isdigit() and 1 <= int(target) <= len(columns):
        return columns[int(target) - 1]
    raise DataError(
        f"{source}: no target column {target!r}; columns are {', '.join(columns)} "
        f"(or give a column number, 1 to {len(columns)})"
    )


def stripped(values: pd.Series) -> pd.Series:
    """``values`` as strings without surrounding whitespace; the same column if it has none
    (a large table's text is not copied for nothing)."""
    text = values.astype(str)
    trimmed = text.str.strip()
    return text if bool((trimmed == text).all()) else trimmed


def missing_to_category(values: pd.Series) -> pd.Series:
    """Feature values as stripped strings, missing ones (NaN, empty, ``?``...) as ``MISSING``."""
    text = values.astype(str).str.strip()
    return text.mask(values.isna() | text.isin(MISSING_TOKENS), MISSING)


def check_shape(names: Sequence[str], n_rows: int, source: str) -> None:
    """A target and a feature column, rows, and a unique name for each column."""
    if len(names) < 2:
        raise DataError(f"{source}: need at least one feature column and a target column")
    if n_rows == 0:
        raise DataError(f"{source}: the table has a header but no rows")
    unnamed = [i + 1 for i, name in enumerate(names) if not str(name).strip()]
    if unnamed:
        raise DataError(f"{source}: header field {unnamed[0]} is empty; name every column")
    duplicated = [name for i, name in enumerate(names) if name in names[:i]]
    if duplicated:
        raise DataError(f"{source}: column names must be unique; repeated: {duplicated}")


def as_text(column: pa.ChunkedArray | pd.Series) -> pd.Series:
    """A column read by Arrow as pandas' ``str`` type (what ``read_csv(dtype=str)`` gives)."""
    if isinstance(column, pd.Series):
        return column
    return pd.Series(_TEXT.__from_arrow__(column), copy=False)
