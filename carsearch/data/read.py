"""Reading CSV and TSV files: the delimiter sniffed, the header checked, cells kept as text."""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from pyarrow import csv as pa_csv

from carsearch.data.kinds import parse_numbers
from carsearch.data.memory import READ_FACTOR, check_fits, give_back_memory
from carsearch.data.table import Table, as_text, check_shape, table_from_columns
from carsearch.exceptions import DataError

_DELIMITERS = ",;\t|"
_LINE_BREAK = re.compile(r"[\r\n]")
#: Bytes decoded at a time to find where a file stops being UTF-8.
_PIECE_BYTES = 1 << 20
#: Bytes of the file the CSV parser works on at a time.
_BLOCK_BYTES = 4 << 20


def read_table(
    path: str | Path,
    target: str | None = None,
    *,
    header: bool = True,
    columns: Sequence[str] | None = None,
    numeric: Sequence[str] = (),
    categorical: Sequence[str] = (),
    task: str = "auto",
    on_column: Callable[[str, pa.ChunkedArray], None] | None = None,
    exact: bool = False,
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
        on_column: called with each column's name and text as read, before it is converted
            (``describe`` counts the cells as the file spells them).
        exact: keep numbers as float64, not float32 (what the models compute in).

    Raises:
        DataError: naming the file and the column, value or rule that failed.
    """
    names, columns_read = read_columns(path, header=header, columns=columns)
    check_shape(names, columns_read.num_rows, str(path))
    cells = {name: columns_read.column(i) for i, name in enumerate(names)}
    if on_column is not None:
        for name, column in cells.items():
            on_column(name, column)
    del columns_read  # the cells' only holder now: each column's text is freed once converted
    return table_from_columns(
        cells,
        target,
        source=str(path),
        numeric=numeric,
        categorical=categorical,
        task=task,
        first_line=2 if header else 1,
        exact=exact,
    )


def read_frame(
    path: str | Path, *, header: bool = True, columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """A CSV or TSV file as a DataFrame of unchanged strings (also what ``predict`` reads).

    Raises:
        DataError: the file is missing, empty, not UTF-8 or malformed; its first line looks
            like data although a header is expected; ``columns`` does not fit its width.
    """
    names, table = read_columns(path, header=header, columns=columns)
    return pd.DataFrame({name: as_text(table.column(i)) for i, name in enumerate(names)})


def read_columns(
    path: str | Path, *, header: bool = True, columns: Sequence[str] | None = None
) -> tuple[list[str], pa.Table]:
    """A CSV or TSV file's column names, and its rows as an Arrow table of strings.

    Arrow's CSV reader streams the file in blocks into Arrow strings: a fraction of the
    memory and time of Python strings, which matters from a million rows on. Convert a
    column with :func:`~carsearch.data.table.as_text`.

    Raises:
        DataError: as :func:`read_frame`.
    """
    path = Path(path)
    check_fits(path, READ_FACTOR, "to read")
    first = _first_line(path)
    delimiter = _sniff_delimiter(path, first)
    rows = _parse(path, delimiter, n_fields=_count_fields(first, delimiter))
    if header:
        return _with_header(rows, str(path))
    names = list(columns) if columns is not None else [f"c{i + 1}" for i in range(rows.num_columns)]
    if len(names) != rows.num_columns:
        raise DataError(
            f"{path}: --columns names {len(names)} columns, but the file has {rows.num_columns}"
        )
    return names, rows


def _first_line(path: Path) -> str:
    """The file's first line that is not blank, read without reading the rest."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as file:
            for line in file:
                if line.strip():
                    return line
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise DataError(_not_utf8(path)) from None
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror})") from None
    raise DataError(f"{path}: the file is empty")


def _not_utf8(path: Path) -> str:
    """Where ``path`` stops being UTF-8, found by decoding it piece by piece."""
    pending, offset = b"", 0  # undecoded bytes (a character cut by a piece), and where
    with path.open("rb") as file:
        while piece := file.read(_PIECE_BYTES):
            data = pending + piece
            try:
                _, used = codecs.utf_8_decode(data, "strict", False)
            except UnicodeDecodeError as error:
                return _not_utf8_at(path, data[error.start], offset + error.start)
            pending, offset = data[used:], offset + used
    if pending:
        return _not_utf8_at(path, pending[0], offset)
    return f"{path}: not UTF-8 text; re-save the file as UTF-8"


def _not_utf8_at(path: Path, byte: int, offset: int) -> str:
    return (
        f"{path}: not UTF-8 text (byte 0x{byte:02x} at offset {offset}); re-save the file as UTF-8"
    )


def _sniff_delimiter(path: Path, first: str) -> str:
    """The candidate delimiter that splits the header line into the most fields."""
    if path.suffix.lower() in {".tsv", ".tab"}:
        return "\t"
    counts = {delimiter: first.count(delimiter) for delimiter in _DELIMITERS}
    delimiter, count = max(counts.items(), key=lambda item: item[1])
    if count == 0:
        raise DataError(
            f"{path}: the first line has a single field; need at least one feature column and "
            "a target column, separated by comma, semicolon, tab or '|'"
        )
    return delimiter


def _count_fields(first: str, delimiter: str) -> int:
    """The fields of the first line, quotes respected (a quoted delimiter is no separator)."""
    return len(next(csv.reader([first.rstrip("\r\n")], delimiter=delimiter), [""]))


def _parse(path: Path, delimiter: str, n_fields: int) -> pa.Table:
    """Every line of the file as a row of strings, the first line included.

    Streamed in blocks: the parser holds one block at a time, not a copy of the file.
    """
    names = [f"f{i}" for i in range(n_fields)]
    try:
        reader = pa_csv.open_csv(
            path,
            read_options=pa_csv.ReadOptions(
                column_names=names, use_threads=False, block_size=_BLOCK_BYTES
            ),
            parse_options=pa_csv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        table = pa.Table.from_batches(list(reader), schema=reader.schema)
    except pa.ArrowInvalid as error:
        message = " ".join(str(error).split())
        if "invalid UTF8" in message:
            raise DataError(_not_utf8(path)) from None
        raise DataError(f"{path}: malformed table ({message[:200]})") from None
    give_back_memory()  # the parser's buffers
    return table


def _with_header(rows: pa.Table, source: str) -> tuple[list[str], pa.Table]:
    """The first row as the column names, after checking it looks like a header."""
    names = [str(rows.column(j)[0]).strip() for j in range(rows.num_columns)]
    broken = [(i + 1, name) for i, name in enumerate(names) if _LINE_BREAK.search(name)]
    if broken:  # a quoted name across lines; messages name columns, one line each
        raise DataError(
            f"{source}: header field {broken[0][0]} ({broken[0][1]!r}) holds a line break; "
            "column names must be one line"
        )
    table = rows.slice(1)
    _check_header(names, table, source)
    return names, table


def _check_header(names: list[str], table: pa.Table, source: str) -> None:
    """A first row whose every field is a value of its column is data, not a header.

    A field is a value of its column when it reappears there, or when it is a number in a
    column of numbers (a header names columns; it does not measure them).
    """
    if table.num_rows < 2:
        return
    if all(_is_value_of(name, as_text(table.column(j))) for j, name in enumerate(names)):
        raise DataError(
            f"{source}: the first line ({', '.join(names)}) looks like data, "
            "not a header; add a header line naming the columns, or pass --no-header"
        )


def _is_value_of(field: str, column: pd.Series) -> bool:
    """Whether ``field`` is among ``column``'s values, or a number in a column of numbers
    (under a tenth of the field and the column's cells fail as numbers). The column is
    parsed only when the field is a number, and without a copy of it joined to the field."""
    if bool((column == field).any()):
        return True
    number, failed_field = parse_numbers(pd.Series([field]))
    if failed_field[0] or np.isnan(number[0]):
        return False
    _, failed = parse_numbers(column)
    return int(failed.sum()) / (len(column) + 1) < 0.1  # the field, a number, among them
