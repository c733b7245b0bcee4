"""Hostile input, generated: arbitrary bytes and CSV-like text for the reader and the predictor.

Whatever the file holds, only carsearch's own errors may escape, each message is one line, and
``carsearch run`` on such a file leaves a stored study as it was. Real files under a temporary
folder; a fixed seed and a bounded number of examples, so every run tests the same inputs.
"""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import carsearch
from carsearch import CarsearchError
from carsearch.bundle.predictor import UNSEEN, Predictor
from carsearch.cli import main
from carsearch.data.read import read_frame, read_table
from helpers import make_mixed_frame, tiny_config

FEATURES = ["income", "age", "city", "plan"]
SPELLINGS = [
    "", " ", "NaN", "nan", "NA", "N/A", "null", "NULL", "None", "?", "inf", "-inf", "+inf",
    "Infinity", "-Infinity", "1e999", "-1e999", "1e-999", "0x10", "1_000", "1,5", "-0", "½",
    "١٢", "paris", "oslo", "basic", "<missing>", "<unknown>", '"', '""', "'", "\\", "\x00",
    "\ufeff", "\u2028", "a\nb", "a\rb", "x" * 100_000,
]  # fmt: skip
NAMES = [*FEATURES, "label", "", " ", "income", "city", "NaN", "1", "a\nb", "predicted_label"]
DELIMITERS = [",", ";", "\t", "|", ",", " ", ":"]
CELLS = st.one_of(
    st.sampled_from(SPELLINGS),
    st.floats().map(repr),
    st.integers().map(str),
    st.text(max_size=12),
)
RUN_OPTIONS = ["--max-epochs", "2", "--patience", "2", "--refit-seeds", "1", "--device", "cpu"]
FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@st.composite
def csv_text(draw: st.DrawFn, *, features_first: bool = False) -> bytes:
    """CSV-like text: random delimiter, quoting, line ends, BOM, ragged rows, odd cells."""
    delimiter = draw(st.sampled_from(DELIMITERS))
    header = draw(st.lists(st.sampled_from(NAMES) | st.text(max_size=6), max_size=7))
    if features_first:
        header = [*draw(st.permutations(FEATURES)), *header[:2]]
    rows = draw(st.lists(st.lists(CELLS, max_size=len(header) + 2), max_size=12))
    if draw(st.booleans()):  # rows as wide as the header, as most files have
        rows = [(row + [""] * len(header))[: len(header)] for row in rows]
    lines = [
        delimiter.join(draw(_quoted(cell, delimiter)) for cell in line) for line in [header, *rows]
    ]
    for position in draw(st.lists(st.integers(0, len(lines)), max_size=3)):
        lines.insert(position, draw(st.sampled_from(["", " ", delimiter])))
    text = draw(st.sampled_from(["\n", "\r\n", "\r"])).join(lines)
    text = draw(st.sampled_from(["", "\ufeff", "\n\n"])) + text + draw(st.sampled_from(["", "\n"]))
    encoding = draw(st.sampled_from(["utf-8"] * 6 + ["utf-16", "latin-1"]))
    return text.encode(encoding, errors="replace")


def _quoted(cell: str, delimiter: str) -> st.SearchStrategy[str]:
    """The cell as written: mostly as is, else quoted, or with a quote or delimiter astray."""
    escaped = cell.replace('"', '""')
    return st.sampled_from([cell] * 5 + [f'"{escaped}"', f'"{cell}', f"{cell}{delimiter}"])


@st.composite
def hostile_cells(draw: st.DrawFn) -> bytes:
    """The training table's layout, well quoted, with odd values in random cells."""
    frame = make_mixed_frame(n_rows=draw(st.integers(1, 12)))
    for _ in range(draw(st.integers(1, 6))):
        row = draw(st.integers(0, len(frame) - 1))
        frame.iloc[row, draw(st.integers(0, frame.shape[1] - 1))] = draw(CELLS)
    frame = frame[draw(st.permutations(list(frame.columns)))]
    separator = draw(st.sampled_from(DELIMITERS[:4]))
    return str(frame.to_csv(index=False, sep=separator)).encode()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid training file with bytes replaced, inserted or cut."""
    data = bytearray(make_mixed_frame(n_rows=12).to_csv(index=False).encode())
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["insert", "replace", "cut"]))
        noise = draw(st.binary(min_size=1, max_size=8))
        if action == "insert":
            data[at:at] = noise
        elif action == "replace":
            data[at : at + len(noise)] = noise
        else:
            del data[at : at + len(noise)]
    return bytes(data)


INPUTS = st.one_of(st.binary(max_size=600), csv_text(), mutated(), hostile_cells())


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def existing(folder: Path) -> carsearch.RunResult:
    """A study (named ``existing``) and its bundle, from a tiny run on a mixed table."""
    torch.set_num_threads(1)
    data = folder / "mixed.csv"
    make_mixed_frame(n_rows=120).to_csv(data, index=False)
    config = tiny_config(folder, data=str(data), study_name="existing", n_trials=2, max_epochs=2)
    return carsearch.run(config.replace(refit_seeds=1, out=str(folder / "bundle")))


def write(folder: Path, data: bytes, suffix: str = ".csv") -> Path:
    path = folder / f"fuzzed{suffix}"
    path.write_bytes(data)
    return path


def assert_one_line(error: CarsearchError) -> None:
    message = str(error)
    assert message and "\n" not in message and "\r" not in message, repr(message)


def run_cli(*argv: str) -> tuple[int, str]:
    """``carsearch ARGV`` in this process: its exit status and stderr."""
    err = io.StringIO()
    with redirect_stdout(io.StringIO()), redirect_stderr(err):
        status = main(list(argv))
    return status, err.getvalue()


def assert_cli_error_or_success(status: int, err: str) -> None:
    if status == 0:
        assert err == ""
    else:
        assert status == 1 and err.startswith("error: ") and err.count("\n") == 1, repr(err)
        assert "\r" not in err


@settings(FUZZ, max_examples=400)
@given(
    data=INPUTS,
    header=st.booleans(),
    target=st.sampled_from([None, "label", "city", "2", "99", "nope"]),
    tsv=st.booleans(),
)
# What an earlier fuzz run found: a byte-order mark or Unicode spaces alone, a column name
# across lines, echoed in a message that names the columns.
@example(data=b"\xef\xbb\xbf", header=True, target=None, tsv=False)
@example(data="\u3000\n".encode(), header=True, target=None, tsv=False)
@example(data=b'c,"a\nb"\nc,"a\nb"\nx,y\n', header=True, target=None, tsv=False)
@example(data=b'c,"a\rb"\n1,x\n2,y\n', header=True, target="nope", tsv=False)
def test_the_reader_raises_only_one_line_carsearch_errors(
    folder: Path, data: bytes, header: bool, target: str | None, tsv: bool
) -> None:
    path = write(folder, data, ".tsv" if tsv else ".csv")
    try:
        read_frame(path, header=header)
    except CarsearchError as error:
        assert_one_line(error)
    try:
        read_table(path, target, header=header)
    except CarsearchError as error:
        assert_one_line(error)


@pytest.mark.filterwarnings("error::RuntimeWarning")  # numpy's would reach users' stderr
@settings(FUZZ, max_examples=120)
@given(
    data=st.one_of(hostile_cells(), csv_text(features_first=True), INPUTS),
    unseen=st.sampled_from(UNSEEN),
)
# Found by an earlier run: a number past float32's range.
@example(data=b"income,age,city,plan\n3.5e+38,1e300,rome,basic\n", unseen="unknown")
def test_the_predictor_raises_only_one_line_carsearch_errors(
    existing: carsearch.RunResult, folder: Path, data: bytes, unseen: Any
) -> None:
    path = write(folder, data)
    model = carsearch.load(existing.bundle, unseen=unseen)
    try:
        frame = read_frame(path)
        for predict in (model.predict, model.predict_proba, model.predict_frame):
            try:
                predict(frame, first_line=2)
            except CarsearchError as error:
                assert_one_line(error)
    except CarsearchError as error:
        assert_one_line(error)
    status, err = run_cli(
        "predict", "--model", str(existing.bundle), "--input", str(path), "--unseen", unseen
    )
    assert_cli_error_or_success(status, err)


def snapshot(storage: str) -> tuple[Any, ...]:
    """Everything stored of study ``existing``: its trials and attributes."""
    backend = optuna.storages.RDBStorage(storage)
    try:
        study_id = backend.get_study_id_from_name("existing")
        trials = [
            (t.number, t.state, t.params, t.values, t.intermediate_values, t.user_attrs)
            for t in backend.get_all_trials(study_id)
        ]
        attrs = (
            backend.get_study_user_attrs(study_id),
            backend.get_study_system_attrs(study_id),
        )
        return trials, attrs
    finally:
        backend.engine.dispose()


#: A file whose last column, its target, is numbers, on too few rows to split: found by this
#: fuzz test, when numpy's ValueError escaped from carsearch/data/split.py.
SMALL_NUMERIC_TARGET = (
    b"age,city,plan,label,income\n,paris,basic,low,23752.38\n20,rome,,low,20347.98\n"
)


def run_on(storage: str, path: Path) -> tuple[int, str]:
    return run_cli(
        "run", "--data", str(path), "--study", "existing", "--storage", storage, *RUN_OPTIONS
    )


@settings(FUZZ, max_examples=60)
@given(data=st.one_of(hostile_cells(), csv_text(features_first=True), INPUTS))
def test_a_run_on_hostile_data_leaves_the_stored_study_unchanged(
    existing: carsearch.RunResult, folder: Path, data: bytes
) -> None:
    storage = existing.summary.storage
    before = snapshot(storage)
    status, err = run_on(storage, write(folder, data))
    assert status == 1, err
    assert_cli_error_or_success(status, err)
    assert snapshot(storage) == before


def test_a_small_numeric_target_is_one_error_line(
    existing: carsearch.RunResult, folder: Path
) -> None:
    storage = existing.summary.storage
    before = snapshot(storage)
    status, err = run_on(storage, write(folder, SMALL_NUMERIC_TARGET))
    assert_cli_error_or_success(status, err)
    assert status == 1 and snapshot(storage) == before


def test_the_bundle_and_study_are_made(existing: carsearch.RunResult) -> None:
    assert isinstance(carsearch.load(existing.bundle), Predictor)
    assert len(snapshot(existing.summary.storage)[0]) >= 2
