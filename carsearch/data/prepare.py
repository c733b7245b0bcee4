"""From a run configuration to split data, encoded for the search and for the refit."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

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
from carsearch.data.table import Table

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

    @cached_property
    def final(self) -> Encoded:
        """The encoding the refit trains with: made on first use, after the search, so that
        a large table is not held encoded twice while trials run."""
        return encode(self.table, self.refit_rows, self.min_category_count)

    @property
    def refit_rows(self) -> np.ndarray:
        return np.concatenate([self.split.train, self.split.val])


def load_table(config: RunConfig) -> Table:
    """The table a run searches on: ``config.data`` if given, else the named data set."""
    if config.data is not None:
        workers = f" with {config.jobs} workers" if config.jobs > 1 else ""
        check_fits(Path(config.data), SEARCH_FACTOR * config.jobs, f"to search{workers}")
        return read_table(config.data, config.target, **config.read_options)
    table: Table = plugins.instance("datasets", config.dataset).load()
    return table


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
    search = encode(table, split.train, config.min_category_count)
    give_back_memory()  # the encoding's temporary copies of a large table
    return Prepared(table, split, search, tuple(rare), config.min_category_count)


def encode(table: Table, rows: np.ndarray, min_category_count: int) -> Encoded:
    """Every row of ``table``, encoded with a schema fitted on ``rows``."""
    schema = fit_schema(table, rows, min_category_count=min_category_count)
    features = table.features
    return Encoded(
        schema=schema,
        codes=encode_codes(features, schema, source=table.source),
        numbers=encode_numbers(features, schema, source=table.source),
        y=encode_target(table.frame[table.target], schema),
    )


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
