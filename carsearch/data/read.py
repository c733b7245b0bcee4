"""Reading CSV and TSV files: the delimiter sniffed, the header checked, cells kept as text."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from carsearch.data.table import Table, make_table
from carsearch.exceptions import DataError

_DELIMITERS = ",;\t|"


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
