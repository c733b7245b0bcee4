"""Reading CSV and TSV files: the delimiter sniffed, the header checked, cells kept as text."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from carsearch.data.kinds import parse_numbers
from carsearch.data.table import Table, make_table
from carsearch.exceptions import DataError

_DELIMITERS = ",;\t|"
_LINE_BREAK = re.compile(r"[\r\n]")


def read_table(
    path: str | Path,
    target: str | None = None,
    *,
    header: bool = True,
    columns: Sequence[str] | None = None,
    numeric: Sequence[str] = (),
    categorical: Sequence[str] = (),
    task: str = "auto",
) -> Table:
    """Read a CSV or TSV file and decide each column's kind (see :mod:`carsearch.data.kinds`)
    and the target's task (:mod:`carsearch.data.target`).

    Args:
        path: the file.
        target: the target column's name or 1-based number (default: the last column).
        header: whether the first line names the columns; without one they are named
            ``c1..cN``, or ``columns``.
        columns: names for a file without a header line, one per column.
        numeric: columns read as numbers whatever the rule says.
        categorical: columns read as categories whatever the rule says.
        task: ``auto``, ``classification`` or ``regression``.

    Raises:
        DataError: naming the file and the column, value or rule that failed.
    """
    frame = read_frame(path, header=header, columns=columns)
    return make_table(
        frame,
        target,
        source=str(path),
        numeric=numeric,
        categorical=categorical,
        task=task,
        first_line=2 if header else 1,
    )


def read_frame(
    path: str | Path, *, header: bool = True, columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """A CSV or TSV file as a DataFrame of unchanged strings (also what ``predict`` reads).

    Raises:
        DataError: the file is missing, empty, not UTF-8 or malformed; its first line looks
            like data although a header is expected; ``columns`` does not fit its width.
    """
    path = Path(path)
    text = _read_text(path)
    rows = _parse(path, text, _sniff_delimiter(path, text))
    if header:
        return _with_header(rows, str(path))
    names = list(columns) if columns is not None else [f"c{i + 1}" for i in range(rows.shape[1])]
    if len(names) != rows.shape[1]:
        raise DataError(
            f"{path}: --columns names {len(names)} columns, but the file has {rows.shape[1]}"
        )
    rows.columns = names
    return rows


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
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataError(
            f"{path}: not UTF-8 text (byte 0x{raw[error.start]:02x} at offset {error.start}); "
            "re-save the file as UTF-8"
        ) from None
    if not text.strip():  # a byte-order mark or Unicode spaces only
        raise DataError(f"{path}: the file is empty")
    return text


def _sniff_delimiter(path: Path, text: str) -> str:
    """The candidate delimiter that splits the header line into the most fields."""
    if path.suffix.lower() in {".tsv", ".tab"}:
        return "\t"
    header = text.lstrip().splitlines()[0]
    counts = {delimiter: header.count(delimiter) for delimiter in _DELIMITERS}
    delimiter, count = max(counts.items(), key=lambda item: item[1])
    if count == 0:
        raise DataError(
            f"{path}: the first line has a single field; need at least one feature column and "
            "a target column, separated by comma, semicolon, tab or '|'"
        )
    return delimiter


def _parse(path: Path, text: str, delimiter: str) -> pd.DataFrame:
    """Every line of ``text`` as a row of strings, the first line included."""
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
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise DataError(f"{path}: malformed table ({' '.join(str(error).split())})") from None
    return rows


def _with_header(rows: pd.DataFrame, source: str) -> pd.DataFrame:
    """The first row as the column names, after checking it looks like a header."""
    frame = rows.iloc[1:].reset_index(drop=True)
    frame.columns = [name.strip() for name in rows.iloc[0]]
    broken = [(i + 1, name) for i, name in enumerate(frame.columns) if _LINE_BREAK.search(name)]
    if broken:  # a quoted name across lines; messages name columns, one line each
        raise DataError(
            f"{source}: header field {broken[0][0]} ({broken[0][1]!r}) holds a line break; "
            "column names must be one line"
        )
    _check_header(frame, source)
    return frame


def _check_header(frame: pd.DataFrame, source: str) -> None:
    """A first row whose every field is a value of its column is data, not a header.

    A field is a value of its column when it reappears there, or when it is a number in a
    column of numbers (a header names columns; it does not measure them).
    """
    if len(frame) < 2:
        return
    if all(_is_value_of(str(name), frame.iloc[:, j]) for j, name in enumerate(frame.columns)):
        raise DataError(
            f"{source}: the first line ({', '.join(map(str, frame.columns))}) looks like data, "
            "not a header; add a header line naming the columns, or pass --no-header"
        )


def _is_value_of(field: str, column: pd.Series) -> bool:
    if field in set(column):
        return True
    numbers, failed = parse_numbers(pd.concat([pd.Series([field]), column], ignore_index=True))
    return not failed[0] and not np.isnan(numbers[0]) and failed.mean() < 0.1
