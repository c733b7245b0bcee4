"""Named data sets, and the UCI Car Evaluation data found or fetched the way users would.

Car Evaluation is looked for as ``car_evaluation.csv`` in ``$CARSEARCH_DATA_HOME``, then
``./data/``, then the user cache; when none has it, UCI's archive is downloaded, checked, and
written to the cache with the textbook's header.
"""

from __future__ import annotations

import io
import logging
import os
import urllib.error
import urllib.request
import zipfile
from abc import ABC, abstractmethod
from pathlib import Path

import pandas as pd

from carsearch.data.read import read_table
from carsearch.data.table import Table, make_table
from carsearch.exceptions import DataError

logger = logging.getLogger("carsearch")

CAR_URL = "https://archive.ics.uci.edu/static/public/19/car+evaluation.zip"
CAR_FILE = "car_evaluation.csv"
CAR_COLUMNS = ("price", "maint", "doors", "persons", "lug_capacity", "safety", "output")
CAR_DOMAINS: dict[str, frozenset[str]] = {
    "price": frozenset({"vhigh", "high", "med", "low"}),
    "maint": frozenset({"vhigh", "high", "med", "low"}),
    "doors": frozenset({"2", "3", "4", "5more"}),
    "persons": frozenset({"2", "4", "more"}),
    "lug_capacity": frozenset({"small", "med", "big"}),
    "safety": frozenset({"low", "med", "high"}),
    "output": frozenset({"unacc", "acc", "good", "vgood"}),
}
CAR_ROWS = 1728


class DatasetPlugin(ABC):
    """Base of data-set plugins (entry-point group ``carsearch.datasets``).

    Example:
        >>> from carsearch.data.datasets import DatasetPlugin
        >>> import pandas as pd
        >>> from carsearch.data import make_table
        >>> class Tiny(DatasetPlugin):
        ...     def load(self):
        ...         frame = pd.DataFrame({"a": ["x", "y"] * 3, "t": ["p", "q"] * 3})
        ...         return make_table(frame, "t", source="tiny")
        >>> Tiny().load().target
        't'
    """

    @abstractmethod
    def load(self) -> Table:
        """The data set as a validated :class:`~carsearch.data.Table`."""


class CarEvaluation(DatasetPlugin):
    """UCI Car Evaluation (1728 cars, six attributes, four classes), CC BY 4.0."""

    def load(self) -> Table:
        return read_table(locate_car_evaluation(), target="output")


def search_paths() -> list[Path]:
    """Where ``car_evaluation.csv`` is looked for, in order."""
    paths = []
    if os.environ.get("CARSEARCH_DATA_HOME"):
        paths.append(Path(os.environ["CARSEARCH_DATA_HOME"]))
    paths.append(Path("data"))
    paths.append(cache_dir())
    return [path / CAR_FILE for path in paths]


def cache_dir() -> Path:
    """The user cache for carsearch data (``$XDG_CACHE_HOME/carsearch``)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "carsearch"


def locate_car_evaluation(url: str | None = None) -> Path:
    """The path of a checked ``car_evaluation.csv``, downloading it to the cache if needed.

    Raises:
        DataError: offline (naming every path tried and where to put the file), or the
            download is not the Car Evaluation data.
    """
    tried = search_paths()
    for path in tried:
        if path.is_file():
            return path
    url = url or os.environ.get("CARSEARCH_CAR_URL", CAR_URL)
    target = cache_dir() / CAR_FILE
    try:
        frame = download_car_evaluation(url)
    except (urllib.error.URLError, OSError, TimeoutError) as error:
        reason = getattr(error, "reason", error)
        raise DataError(
            f"Car Evaluation data not found (tried {', '.join(map(str, tried))}) and the "
            f"download from {url} failed ({reason}); put {CAR_FILE} in one of those folders "
            "or set CARSEARCH_DATA_HOME to the folder that holds it"
        ) from None
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    frame.to_csv(partial, index=False)
    partial.replace(target)  # atomic: a crash never leaves half a file where it is looked for
    logger.info("downloaded Car Evaluation data to %s", target)
    return target


def download_car_evaluation(url: str, timeout: float = 30.0) -> pd.DataFrame:
    """Fetch UCI's zip, read ``car.data`` and check it is the Car Evaluation data."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        payload = response.read()
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            raw = archive.read("car.data").decode("ascii")
    except (zipfile.BadZipFile, KeyError, UnicodeDecodeError) as error:
        raise DataError(f"{url}: not UCI's Car Evaluation archive ({error})") from None
    frame = pd.read_csv(io.StringIO(raw), header=None, names=list(CAR_COLUMNS), dtype=str)
    check_car_evaluation(frame, source=url)
    return frame


def check_car_evaluation(frame: pd.DataFrame, *, source: str) -> Table:
    """The rows, columns, values and classes must be those of the Car Evaluation data."""
    if len(frame) != CAR_ROWS:
        raise DataError(f"{source}: expected {CAR_ROWS} rows of Car Evaluation, got {len(frame)}")
    for column, domain in CAR_DOMAINS.items():
        values = set(frame[column].dropna())
        if values != domain:
            raise DataError(
                f"{source}: column {column!r} holds {sorted(values)}, expected {sorted(domain)}"
            )
    return make_table(frame, "output", source=source)
