"""From a run configuration to encoded, split data ready for training."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from carsearch import plugins
from carsearch.config import RunConfig
from carsearch.data.encode import encode, encode_target
from carsearch.data.read import read_table
from carsearch.data.schema import Schema
from carsearch.data.split import Split, check_splittable, split_rows
from carsearch.data.table import Table


@dataclass(frozen=True)
class Prepared:
    """A table with its schema, its split and its integer codes."""

    table: Table
    schema: Schema
    split: Split
    x: np.ndarray
    y: np.ndarray


def load_table(config: RunConfig) -> Table:
    """The table a run searches on: ``config.data`` if given, else the named data set."""
    if config.data is not None:
        return read_table(config.data, config.target)
    table: Table = plugins.instance("datasets", config.dataset).load()
    return table


def prepare(config: RunConfig, table: Table | None = None) -> Prepared:
    """Load (unless given), check, encode and split the run's table."""
    table = table if table is not None else load_table(config)
    if config.split == "stratified":
        check_splittable(table)
    schema = table.schema()
    x = encode(table.features, schema, column_source=table.source)
    y = encode_target(table.frame[table.target], schema)
    split = split_rows(
        y,
        kind=config.split,
        val_fraction=config.val_fraction,
        test_fraction=config.test_fraction,
        seed=config.seed,
    )
    return Prepared(table=table, schema=schema, split=split, x=x, y=y)


def default_study_name(config: RunConfig) -> str:
    """The study name when none is given: the data file's stem or the data set's name."""
    if config.study_name:
        return config.study_name
    return Path(config.data).stem if config.data else config.dataset
