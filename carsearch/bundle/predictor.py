"""The best model as a scikit-learn-style predictor: :func:`load` and :func:`load_best`.

Inputs are DataFrames named like the training table: columns in any order, extra columns
ignored, every value read as a string the way training read it (missing values become the
category ``<missing>``). A missing column, or a value not seen in training, is a
:class:`~carsearch.exceptions.DataError` naming the column and the value, unless the
predictor was loaded with ``unseen="most_frequent"``, which replaces unseen values by their
column's most frequent training category.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from carsearch.bundle.artifacts import bundle_path
from carsearch.bundle.files import Bundle, read_bundle
from carsearch.config import DEFAULT_STORAGE
from carsearch.data.encode import encode
from carsearch.data.schema import Schema
from carsearch.data.table import missing_to_category
from carsearch.exceptions import ConfigError, DataError, StudyError
from carsearch.search.study import best_trial, open_existing

logger = logging.getLogger("carsearch")

Unseen = Literal["error", "most_frequent"]
UNSEEN: tuple[str, ...] = ("error", "most_frequent")
#: Rows per forward pass, so that a large input does not need one huge tensor.
CHUNK_ROWS = 65_536


class Predictor:
    """A loaded bundle's ensemble, predicting from DataFrames like a scikit-learn classifier.

    Build it with :func:`load` or :func:`load_best`. Learned state lives in attributes
    ending in ``_``: ``classes_`` and ``feature_names_in_`` (numpy arrays of strings, in
    training order), ``n_features_in_``, ``schema_``, ``model_`` (the
    :class:`~carsearch.models.ensemble.Ensemble`, eval mode, CPU), ``most_frequent_`` and
    ``manifest_`` (the bundle's ``model.json``).

    Args:
        bundle: a bundle read by :func:`carsearch.bundle.files.read_bundle`.
        unseen: ``"error"`` (default) raises on a value not seen in training;
            ``"most_frequent"`` replaces it by its column's most frequent training value.

    Example:
        >>> import carsearch, pandas as pd
        >>> model = carsearch.load("studies/car_evaluation/best")  # doctest: +SKIP
        >>> cars = pd.DataFrame({"price": ["low"], "maint": ["low"], "doors": ["4"],
        ...     "persons": ["4"], "lug_capacity": ["big"], "safety": ["high"]})
        >>> model.predict(cars)  # doctest: +SKIP
        array(['vgood'], dtype=object)
    """

    def __init__(self, bundle: Bundle, *, unseen: Unseen = "error") -> None:
        if unseen not in UNSEEN:
            raise ConfigError(f"unseen must be one of {', '.join(UNSEEN)}; got {unseen!r}")
        self.unseen = unseen
        self.path_ = bundle.path
        self.manifest_ = bundle.manifest
        self.schema_: Schema = bundle.schema
        self.model_ = bundle.model
        self.classes_ = np.array(bundle.schema.classes, dtype=object)
        self.feature_names_in_ = np.array(bundle.schema.feature_names, dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        self.most_frequent_: dict[str, str] = dict(bundle.manifest["most_frequent"])

    def __repr__(self) -> str:
        return f"Predictor({str(self.path_)!r}, unseen={self.unseen!r})"

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Class probabilities, a float32 array ``(rows, classes)`` in ``classes_`` order.

        Raises:
            DataError: a feature column is missing, or (with ``unseen="error"``) a value
                was not seen in training; the message names the column and the value.
        """
        codes = self.encode(X)
        parts = []
        with torch.inference_mode():
            for start in range(0, len(codes), CHUNK_ROWS):
                chunk = torch.as_tensor(codes[start : start + CHUNK_ROWS])
                parts.append(self.model_(chunk).numpy())
        if not parts:
            return np.empty((0, len(self.classes_)), dtype=np.float32)
        return np.concatenate(parts)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """The most probable class of each row, an array of class names."""
        result: np.ndarray = self.classes_[self.predict_proba(X).argmax(axis=1)]
        return result

    def predict_frame(self, X: pd.DataFrame) -> pd.DataFrame:
        """``X`` with ``predicted_<target>`` and one ``proba_<class>`` column per class."""
        frame = as_frame(X)
        probabilities = self.predict_proba(frame)
        names = [f"predicted_{self.schema_.target}"] + [f"proba_{c}" for c in self.classes_]
        clashes = [name for name in names if name in frame.columns]
        if clashes:
            raise DataError(f"input: already has a column {clashes[0]!r}; drop or rename it")
        result = frame.copy()
        result[names[0]] = self.classes_[probabilities.argmax(axis=1)]
        for name, column in zip(names[1:], probabilities.T, strict=True):
            result[name] = column
        return result

    def encode(self, X: pd.DataFrame) -> np.ndarray:
        """The int64 category codes ``(rows, features)`` the model takes."""
        frame = clean_features(as_frame(X), self.schema_)
        if self.unseen == "most_frequent":
            frame = replace_unseen(frame, self.schema_, self.most_frequent_)
        return encode(frame, self.schema_, column_source="input")


def load(path: str | Path, *, unseen: Unseen = "error") -> Predictor:
    """The predictor of the bundle in folder ``path``.

    Raises:
        BundleError: the bundle is incomplete, changed or malformed.
        PluginError: its model plugin is not installed.
    """
    return Predictor(read_bundle(path), unseen=unseen)


def load_best(
    study: str | None = None, *, storage: str = DEFAULT_STORAGE, unseen: Unseen = "error"
) -> Predictor:
    """The predictor of a stored study's best trial, from the study's bundle.

    Raises:
        StudyError: no such study, no bundle, or the bundle is of another trial than the
            current best (the study went on after it was exported); ``carsearch export``
            writes a fresh one.
    """
    found = open_existing(study, storage)
    path = bundle_path(found)
    remedy = f"run: carsearch export --study {found.study_name} --storage {storage}"
    if path is None:
        raise StudyError(f"study {found.study_name!r} has no exported bundle; {remedy}")
    predictor = load(path, unseen=unseen)
    best = best_trial(found).number
    if predictor.manifest_.get("trial") != best:
        raise StudyError(
            f"the bundle at {path} is of trial {predictor.manifest_.get('trial')}, but the "
            f"best trial is now {best}; {remedy}"
        )
    return predictor


def as_frame(X: Any) -> pd.DataFrame:
    """``X`` as a DataFrame: a DataFrame, or a mapping of column names to values."""
    if isinstance(X, pd.DataFrame):
        return X
    if isinstance(X, Mapping):
        return pd.DataFrame(dict(X))
    raise DataError(
        f"input: expected a DataFrame with named columns, got {type(X).__name__}; "
        "columns are matched by name, not by position"
    )


def clean_features(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """The schema's columns of ``frame`` as training read them (strings, ``<missing>``).

    Raises:
        DataError: a schema column is not in ``frame``.
    """
    repeated = sorted({str(n) for n in frame.columns[frame.columns.duplicated()]})
    if set(repeated) & set(schema.feature_names):
        raise DataError(f"input: column names must be unique; repeated: {repeated}")
    missing = [name for name in schema.feature_names if name not in frame.columns]
    if missing:
        raise DataError(
            f"input: missing column {missing[0]!r}; the model needs "
            f"{', '.join(schema.feature_names)}"
        )
    return pd.DataFrame(
        {name: missing_to_category(frame[name]) for name in schema.feature_names},
        index=frame.index,
    )


def replace_unseen(frame: pd.DataFrame, schema: Schema, fallback: dict[str, str]) -> pd.DataFrame:
    """Values not seen in training replaced by their column's ``fallback`` value."""
    result = frame.copy()
    for column in schema.columns:
        unseen = ~result[column.name].isin(column.categories)
        if unseen.any():
            first = result[column.name][unseen].iloc[0]
            logger.warning(
                "column %r: %d value(s) not seen in training (first %r) read as %r",
                column.name,
                int(unseen.sum()),
                first,
                fallback[column.name],
            )
            result.loc[unseen, column.name] = fallback[column.name]
    return result
