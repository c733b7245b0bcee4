"""From a run configuration to split data, encoded for the search and for the refit."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from carsearch import plugins
from carsearch.config import RunConfig
from carsearch.data.encode import (
    encode_codes,
    encode_numbers,
    encode_target,
    fit_schema,
    table_classes,
)
from carsearch.data.memory import SEARCH_FACTOR, check_fits, give_back_memory
from carsearch.data.read import read_table
from carsearch.data.schema import CLASSIFICATION, Schema
from carsearch.data.split import Split, check_parts, rare_classes, split_rows
from carsearch.data.table import FINGERPRINT_PREFIX, Table

logger = logging.getLogger("carsearch")

#: Quantile bins a numeric target is stratified on, at most one per ``ROWS_PER_STRATUM``
#: rows: a bin of fewer than 3 rows goes to training whole, leaving small tables no test.
N_STRATA = 10
ROWS_PER_STRATUM = 10


@dataclass(frozen=True)
class Encoded:
    """Every row of a table encoded with one schema: codes, numbers and labels."""

    schema: Schema
    codes: np.ndarray
    numbers: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class Prepared:
    """A table, its split, and its encodings.

    ``search`` uses a schema fitted on the training rows (what trials train and validate
    with), ``final`` one fitted on training and validation rows (what the refit trains
    with). Neither has seen a test row.
    """

    table: Table
    split: Split
    search: Encoded
    rare_classes: tuple[str, ...] = ()
    min_category_count: int = 3
    #: The row of the table as loaded that each row of ``table`` is (``table`` is in split
    #: order: ``split``'s parts are ranges of it).
    source_rows: np.ndarray | None = None

    @cached_property
    def final(self) -> Encoded:
        """The encoding the refit trains with: made on first use, after the search, so that
        a large table is not held encoded twice while trials run."""
        return encode(
            self.table, self.refit_rows, self.min_category_count, numbers=self.search.numbers
        )

    @property
    def refit_rows(self) -> np.ndarray:
        return np.concatenate([self.split.train, self.split.val])


def load_table(config: RunConfig, *, exact: bool = False) -> Table:
    """The table a run searches on: ``config.data`` if given, else the named data set;
    ``exact``: a file's numbers as float64 (for :meth:`Table.legacy_fingerprint`)."""
    if config.data is not None:
        workers = f" with {config.jobs} workers" if config.jobs > 1 else ""
        check_fits(Path(config.data), SEARCH_FACTOR * config.jobs, f"to search{workers}")
        return read_table(config.data, config.target, exact=exact, **config.read_options)
    table: Table = plugins.instance("datasets", config.dataset).load()
    return table


def same_data(stored: str | None, table: Table, config: RunConfig) -> bool:
    """Whether ``table`` (of ``config``) is the data a study's stored fingerprint is of.

    A fingerprint stored by carsearch up to 0.2 (without :data:`FINGERPRINT_PREFIX`) is of
    the numbers' float64 text: the data is loaded again, numbers as float64, to take it.
    """
    if stored is None:
        return True
    if stored.startswith(FINGERPRINT_PREFIX):
        return stored == table.fingerprint()
    return stored == load_table(config, exact=True).legacy_fingerprint()


def prepare(config: RunConfig, table: Table | None = None) -> Prepared:
    """Load (unless given), check, split and encode the run's table."""
    table = table if table is not None else load_table(config)
    classes = table.task == CLASSIFICATION
    rare = rare_classes(table) if classes and config.split == "stratified" else []
    if rare:
        logger.warning(
            "%s: class(es) %s have fewer than 3 rows: kept for training, not in the test split",
            table.source,
            ", ".join(map(repr, rare)),
        )
    split = split_rows(
        strata(table),
        kind=config.split,
        val_fraction=config.val_fraction,
        test_fraction=config.test_fraction,
        seed=config.seed,
    )
    check_parts(split, table.source)
    source_rows = np.concatenate([split.train, split.val, split.test])
    table, split = in_split_order(table, split)
    search = encode(table, split.train, config.min_category_count)
    share_numbers(table, search.numbers)
    give_back_memory()  # the encoding's temporary copies of a large table
    return Prepared(table, split, search, tuple(rare), config.min_category_count, source_rows)


def in_split_order(table: Table, split: Split) -> tuple[Table, Split]:
    """The table's rows reordered train, validation, test (each part in its own order), and
    the split of the reordered table: each part a range of rows, so that the training and
    validation tensors are views of an encoding, not copies of it."""
    parts = (split.train, split.val, split.test)
    table = table.take(np.concatenate(parts))
    ends = np.cumsum([len(part) for part in parts])
    train, val, test = (
        np.arange(end - len(part), end) for part, end in zip(parts, ends, strict=True)
    )
    return table, Split(train, val, test)


def rows_of(array: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``array[rows]``: a view when ``rows`` are consecutive (a prepared split's parts
    are), a copy otherwise. A view shares memory: change it and ``array`` changes."""
    if len(rows) and rows[-1] - rows[0] + 1 == len(rows) and bool(np.all(np.diff(rows) == 1)):
        view: np.ndarray = array[int(rows[0]) : int(rows[-1]) + 1]
        return view
    copy: np.ndarray = array[rows]
    return copy


def encode(
    table: Table, rows: np.ndarray, min_category_count: int, numbers: np.ndarray | None = None
) -> Encoded:
    """Every row of ``table``, encoded with a schema fitted on ``rows``; ``numbers``: the
    table's numbers encoded already (they do not depend on the schema), not encoded again."""
    schema = fit_schema(table, rows, min_category_count=min_category_count)
    features = table.features
    return Encoded(
        schema=schema,
        codes=encode_codes(features, schema, source=table.source),
        numbers=encode_numbers(features, schema, source=table.source)
        if numbers is None
        else numbers,
        y=encode_target(table.frame[table.target], schema),
    )


def share_numbers(table: Table, numbers: np.ndarray) -> None:
    """Make ``table``'s float32 numeric columns views of ``numbers``, their encoding (the
    same values): a large table's numbers are then held once, not twice."""
    for j, name in enumerate(table.numeric):
        if table.frame[name].dtype == np.float32:
            table.frame[name] = pd.Series(numbers[:, j], copy=False)


def default_study_name(config: RunConfig) -> str:
    """The study name when none is given: the data file's stem or the data set's name."""
    if config.study_name:
        return config.study_name
    return Path(config.data).stem if config.data else config.dataset


def strata(table: Table) -> np.ndarray:
    """What a stratified split keeps in proportion: the classes, or the target's deciles.

    Deciles give every part the whole range of a numeric target, its tails included.
    """
    target = table.frame[table.target]
    if table.task == CLASSIFICATION:
        return encode_target(target, Schema((), table.target, table_classes(table)))
    values = target.to_numpy(np.float64)
    n_strata = max(1, min(N_STRATA, len(values) // ROWS_PER_STRATUM))
    edges = np.quantile(values, np.linspace(0, 1, n_strata + 1)[1:-1])
    bins: np.ndarray = np.searchsorted(edges, values, side="right")
    return bins
