"""Reading categorical tables, describing them, encoding them and splitting them.

A :class:`Table` is a DataFrame of strings plus the name of its target column. Its
:class:`Schema` (column vocabularies and class names, in order) is what a model is built
from and what an export bundle stores, so that later inputs are encoded the same way.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from carsearch.exceptions import DataError

MISSING = "<missing>"
_MISSING_TOKENS = frozenset({"", "?", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"})
_DELIMITERS = ",;\t|"
_MIN_CLASS_ROWS = 3  # one row each for train, validation and test


@dataclass(frozen=True)
class Column:
    """A categorical column and its categories, in code order."""

    name: str
    categories: tuple[str, ...]

    @property
    def cardinality(self) -> int:
        return len(self.categories)


@dataclass(frozen=True)
class Schema:
    """What a model needs to know about a table: its columns and classes."""

    columns: tuple[Column, ...]
    target: str
    classes: tuple[str, ...]

    @property
    def cardinalities(self) -> list[int]:
        return [column.cardinality for column in self.columns]

    @property
    def feature_names(self) -> list[str]:
        return [column.name for column in self.columns]

    def to_dict(self) -> dict[str, object]:
        return {
            "columns": [{"name": c.name, "categories": list(c.categories)} for c in self.columns],
            "target": self.target,
            "classes": list(self.classes),
        }

    @classmethod
    def from_dict(cls, record: dict[str, object]) -> Schema:
        columns = tuple(
            Column(str(c["name"]), tuple(str(v) for v in c["categories"]))
            for c in record["columns"]  # type: ignore[attr-defined]
        )
        classes = tuple(str(v) for v in record["classes"])  # type: ignore[attr-defined]
        return cls(columns=columns, target=str(record["target"]), classes=classes)


@dataclass(frozen=True)
class Table:
    """A categorical table: every cell a string, one column the target."""

    frame: pd.DataFrame
    target: str
    source: str

    @property
    def features(self) -> pd.DataFrame:
        return self.frame.drop(columns=[self.target])

    def schema(self) -> Schema:
        """Vocabularies sorted, so the same data always gives the same codes."""
        columns = tuple(
            Column(str(name), tuple(sorted(self.frame[name].unique())))
            for name in self.frame.columns
            if name != self.target
        )
        classes = tuple(sorted(self.frame[self.target].unique()))
        return Schema(columns=columns, target=self.target, classes=classes)

    def fingerprint(self) -> str:
        """A sha256 of the table's content and column order (not of the file's bytes)."""
        digest = hashlib.sha256()
        digest.update("\x1f".join(self.frame.columns).encode())
        for row in self.frame.itertuples(index=False):
            digest.update(("\x1e" + "\x1f".join(row)).encode())
        return digest.hexdigest()


@dataclass(frozen=True)
class Split:
    """Row indices of the train, validation and test parts."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def read_table(path: str | Path, target: str | None = None) -> Table:
    """Read a CSV or TSV file of categorical columns.

    Missing feature values (empty, ``?``, ``NA``...) become their own category
    ``"<missing>"``; a missing target value is an error.

    Raises:
        DataError: naming the file and the column, value or rule that failed.
    """
    return make_table(read_frame(path), target, source=str(path))


def read_frame(path: str | Path) -> pd.DataFrame:
    """A CSV or TSV file as a DataFrame of unchanged strings (also what ``predict`` reads).

    Raises:
        DataError: the file is missing, empty, not UTF-8, malformed or has no header line.
    """
    path = Path(path)
    text = _read_text(path)
    return _parse(path, text, _sniff_delimiter(path, text))


def make_table(frame: pd.DataFrame, target: str | None, *, source: str) -> Table:
    """Validate a DataFrame as a categorical table (``target`` defaults to the last column)."""
    if frame.shape[1] < 2:
        raise DataError(f"{source}: need at least one feature column and a target column")
    if frame.empty:
        raise DataError(f"{source}: the table has a header but no rows")
    unnamed = [i + 1 for i, name in enumerate(frame.columns) if not str(name).strip()]
    if unnamed:
        raise DataError(f"{source}: header field {unnamed[0]} is empty; name every column")
    duplicated = frame.columns[frame.columns.duplicated()].tolist()
    if duplicated:
        raise DataError(f"{source}: column names must be unique; repeated: {duplicated}")
    target = frame.columns[-1] if target is None else target
    if target not in frame.columns:
        raise DataError(
            f"{source}: no target column {target!r}; columns are {', '.join(frame.columns)}"
        )
    frame = frame.astype(str).map(str.strip)
    _check_target(frame[target], target, source)
    for name in frame.columns:
        if name != target:
            frame[name] = missing_to_category(frame[name])
    return Table(frame=frame.reset_index(drop=True), target=str(target), source=source)


def missing_to_category(values: pd.Series) -> pd.Series:
    """Feature values as stripped strings, missing ones (NaN, empty, ``?``...) as ``MISSING``."""
    text = values.astype(str).str.strip()
    return text.mask(values.isna() | text.isin(_MISSING_TOKENS), MISSING)


def encode(frame: pd.DataFrame, schema: Schema, *, column_source: str = "input") -> np.ndarray:
    """Integer codes of ``frame``'s feature columns, shape (rows, columns), in schema order.

    Raises:
        DataError: a schema column is missing, or a value is not in its vocabulary.
    """
    codes = np.empty((len(frame), len(schema.columns)), dtype=np.int64)
    for j, column in enumerate(schema.columns):
        if column.name not in frame.columns:
            raise DataError(f"{column_source}: missing column {column.name!r}")
        values = frame[column.name].astype(str)
        index = pd.Index(column.categories)
        position = index.get_indexer(values)
        if (position < 0).any():
            unseen = values[position < 0].iloc[0]
            raise DataError(
                f"{column_source}: column {column.name!r} has value {unseen!r}, not seen in "
                f"training; known values are {', '.join(column.categories)}"
            )
        codes[:, j] = position
    return codes


def encode_target(series: pd.Series, schema: Schema) -> np.ndarray:
    """Class codes of a target column, in ``schema.classes`` order."""
    return pd.Index(schema.classes).get_indexer(series.astype(str)).astype(np.int64)


def split_rows(
    labels: np.ndarray, *, kind: str, val_fraction: float, test_fraction: float, seed: int
) -> Split:
    """Split row indices into train, validation and test.

    ``stratified`` keeps each class's share in every part (shuffled by ``seed``).
    ``ordered`` reproduces the textbook: the last ``test_fraction`` of rows are the test
    set and the ``val_fraction`` just before them the validation set, in file order.
    """
    if kind == "ordered":
        n = len(labels)
        n_test, n_val = round(n * test_fraction), round(n * val_fraction)
        rows = np.arange(n)
        return Split(
            rows[: n - n_test - n_val], rows[n - n_test - n_val : n - n_test], rows[n - n_test :]
        )
    rng = np.random.default_rng(seed)
    parts: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
    for label in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == label))
        n_test = max(1, round(len(rows) * test_fraction))
        n_val = max(1, round(len(rows) * val_fraction))
        cuts = [len(rows) - n_test - n_val, len(rows) - n_test]
        for part, chunk in zip(parts, np.split(rows, cuts), strict=True):
            part.append(chunk)
    train, val, test = (np.sort(np.concatenate(p)) for p in parts)
    return Split(train, val, test)


def check_splittable(table: Table) -> None:
    """Every class needs a row in each of train, validation and test."""
    counts = table.frame[table.target].value_counts()
    small = counts[counts < _MIN_CLASS_ROWS]
    if not small.empty:
        label, count = small.index[0], int(small.iloc[0])
        raise DataError(
            f"{table.source}: class {label!r} of column {table.target!r} has {count} row(s); "
            f"each class needs at least {_MIN_CLASS_ROWS} to appear in train, validation and test"
        )


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror})") from None
    if not raw.strip():
        raise DataError(f"{path}: the file is empty")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataError(
            f"{path}: not UTF-8 text (byte 0x{raw[error.start]:02x} at offset {error.start}); "
            "re-save the file as UTF-8"
        ) from None


def _sniff_delimiter(path: Path, text: str) -> str:
    """The candidate delimiter that splits the header line into the most fields."""
    if path.suffix.lower() in {".tsv", ".tab"}:
        return "\t"
    header = text.lstrip().splitlines()[0]
    counts = {delimiter: header.count(delimiter) for delimiter in _DELIMITERS}
    delimiter, count = max(counts.items(), key=lambda item: item[1])
    if count == 0:
        raise DataError(
            f"{path}: the header line has a single field; need at least one feature column and "
            "a target column, separated by comma, semicolon, tab or '|'"
        )
    return delimiter


def _parse(path: Path, text: str, delimiter: str) -> pd.DataFrame:
    try:
        rows = pd.read_csv(
            io.StringIO(text),
            sep=delimiter,
            dtype=str,
            header=None,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=True,
            engine="c",
        )
    except pd.errors.ParserError as error:
        raise DataError(f"{path}: malformed table ({str(error).strip()})") from None
    header = [name.strip() for name in rows.iloc[0]]
    frame = rows.iloc[1:].reset_index(drop=True)
    frame.columns = header
    _check_header(frame, str(path))
    return frame


def _check_target(target: pd.Series, name: str, source: str) -> None:
    missing = target.isin(_MISSING_TOKENS)
    if missing.any():
        line = int(np.flatnonzero(missing.to_numpy())[0]) + 2
        raise DataError(
            f"{source}: target column {name!r} has {int(missing.sum())} missing value(s), "
            f"first on line {line}; every row needs a class"
        )
    if target.nunique() < 2:
        raise DataError(
            f"{source}: target column {name!r} has a single class {target.iloc[0]!r}; "
            "a classifier needs at least two"
        )


def _check_header(frame: pd.DataFrame, source: str) -> None:
    """A first row whose every field reappears in its column is data, not a header."""
    if len(frame) < 2:
        return
    looks_like_data = all(name in set(frame.iloc[:, j]) for j, name in enumerate(frame.columns))
    if looks_like_data:
        raise DataError(
            f"{source}: the first line ({', '.join(map(str, frame.columns))}) looks like data, "
            "not a header; add a header line naming the columns"
        )
