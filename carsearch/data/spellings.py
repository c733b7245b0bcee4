"""Numbers spelled in ways carsearch does not read as numbers: ``1,234``, ``3,14``, ``inf``.

A column of them is categorical by the rule of :mod:`carsearch.data.kinds` (only finite
numbers written with a ``.`` decimal point are numbers); :func:`odd_spelling` says when most
of a column looks like numbers all the same, so that the user is told, not left with a
column of a thousand categories.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Spelling:
    """A way of writing numbers that the parser does not take."""

    name: str
    pattern: str
    advice: str


#: Thousands separators first: ``1,234`` reads as one more often than as a comma decimal.
SPELLINGS = (
    Spelling(
        "with thousands separators",
        r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?",
        "remove the separators (write '1234.5')",
    ),
    Spelling(
        "with comma decimals",
        r"[+-]?(?:\d{1,3}(?:\.\d{3})+|\d*),\d+",
        "write the decimals after a point (write '3.14')",
    ),
)
INFINITE = Spelling(
    "with infinite values", "", "replace the infinite values by missing ones ('') or numbers"
)


@dataclass(frozen=True)
class OddNumbers:
    """A column that looks like numbers spelled as :attr:`spelling`, e.g. :attr:`example`."""

    spelling: Spelling
    example: str

    def note(self) -> str:
        """What ``describe`` says of the column."""
        return (
            f"looks like numbers {self.spelling.name} (e.g. {self.example!r}); "
            f"{self.spelling.advice} to read it as numbers"
        )

    def warning(self, source: str, name: str, kind: str) -> str:
        """The warning a run logs, once per column."""
        return (
            f"{source}: column {name!r} is {kind}, but {self.note()} "
            f"(--numeric {name} does not parse them)"
        )


def odd_spelling(values: pd.Series, numbers: np.ndarray, failed: np.ndarray) -> OddNumbers | None:
    """How most of a column is spelled, when most of its present values are numbers written
    with thousands separators, comma decimals or infinite values; else ``None``.

    Args:
        values: the column's stripped strings.
        numbers: ``values`` parsed (:func:`~carsearch.data.kinds.parse_numbers`).
        failed: where a present value is not a finite number.
    """
    if not failed.any():
        return None
    n_present = int((~np.isnan(numbers) | failed).sum())
    n_numbers = n_present - int(failed.sum())
    odd = values[failed]
    infinite = np.isinf(numbers[failed])
    found = [(int(infinite.sum()), INFINITE, odd[infinite])]
    for spelling in SPELLINGS:
        matched = odd[~infinite][odd[~infinite].str.fullmatch(spelling.pattern).to_numpy(bool)]
        found.append((len(matched), spelling, matched))
    count, spelling, examples = max(found, key=lambda hit: hit[0])
    if count == 0 or 2 * (n_numbers + count) <= n_present:
        return None
    return OddNumbers(spelling, str(examples.iloc[0]))
