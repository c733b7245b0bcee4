"""The best model as a scikit-learn-style predictor: :func:`load` and :func:`load_best`.

Inputs are DataFrames named like the training table: columns in any order, extra columns
ignored, values read the way training read them. A categorical value is read as a string (a
missing one is the category ``<missing>``); one not seen in training is ``<unknown>``, which
the model learned from the categories too rare in training to have codes of their own, or,
with ``unseen="error"``, an error naming the column and the value (``"most_frequent"``
reads it as its column's most frequent training value instead). A numeric value may be any
number float32 holds (as in training), or missing; text, ``inf`` or a number beyond
float32's range there is an error naming the column, the row and the value.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from carsearch.bundle.artifacts import bundle_path, check_origin
from carsearch.bundle.files import Bundle, read_bundle
from carsearch.config import DEFAULT_STORAGE
from carsearch.data.encode import encode_codes, encode_numbers
from carsearch.data.schema import CLASSIFICATION, UNKNOWN, Schema
from carsearch.data.table import missing_to_category
from carsearch.exceptions import ConfigError, DataError, StudyError
from carsearch.search.study import best_trial, open_existing
from carsearch.urls import shown_url

logger = logging.getLogger("carsearch")

Unseen = Literal["unknown", "error", "most_frequent"]
UNSEEN: tuple[str, ...] = ("unknown", "error", "most_frequent")
#: Rows per forward pass, so that a large input does not need one huge tensor.
CHUNK_ROWS = 65_536


class Predictor:
    """A loaded bundle's ensemble, predicting from DataFrames like a scikit-learn estimator.

    Build it with :func:`load` or :func:`load_best`. Learned state lives in attributes
    ending in ``_``: ``classes_`` (classification) and ``feature_names_in_`` (numpy arrays
    of strings, in training order), ``n_features_in_``, ``schema_``, ``model_`` (the
    :class:`~carsearch.models.network.Ensemble`, eval mode, CPU), ``most_frequent_``,
    ``decision_weights_`` (the class weights :meth:`predict` applies, or ``None``) and
    ``manifest_`` (the bundle's ``model.json``).

    Args:
        bundle: a bundle read by :func:`carsearch.bundle.files.read_bundle`.
        unseen: what a categorical value not seen in training becomes: ``"unknown"``
            (default) its column's ``<unknown>`` code, ``"error"`` an error, or
            ``"most_frequent"`` the column's most frequent training value.

    Example:
        >>> import carsearch, pandas as pd
        >>> model = carsearch.load("studies/car_evaluation/best")  # doctest: +SKIP
        >>> cars = pd.DataFrame({"price": ["low"], "maint": ["low"], "doors": ["4"],
        ...     "persons": ["4"], "lug_capacity": ["big"], "safety": ["high"]})
        >>> model.predict(cars)  # doctest: +SKIP
        array(['vgood'], dtype=object)
    """

    def __init__(self, bundle: Bundle, *, unseen: Unseen = "unknown") -> None:
        if unseen not in UNSEEN:
            raise ConfigError(f"unseen must be one of {', '.join(UNSEEN)}; got {unseen!r}")
        self.unseen = unseen
        self.path_ = bundle.path
        self.manifest_ = bundle.manifest
        self.schema_: Schema = bundle.schema
        self.model_ = bundle.model
        self.task_ = bundle.schema.task
        self._classes = np.array(bundle.schema.classes, dtype=object)
        self.feature_names_in_ = np.array(bundle.schema.feature_names, dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        self.most_frequent_: dict[str, str] = dict(bundle.manifest["most_frequent"])
        weights = bundle.manifest.get("decision_weights")
        self.decision_weights_: np.ndarray | None = (
            None if weights is None else np.asarray(weights, dtype=np.float64)
        )

    @property
    def classes_(self) -> np.ndarray:
        """The class names, in the order of :meth:`predict_proba`'s columns.

        Raises:
            AttributeError: the model predicts numbers (regression), not classes.
        """
        if self.task_ != CLASSIFICATION:
            raise AttributeError(
                f"{self.path_}: this model predicts numbers ({self.schema_.target}); "
                "it has no classes_"
            )
        return self._classes

    def __repr__(self) -> str:
        return f"Predictor({str(self.path_)!r}, unseen={self.unseen!r})"

    def predict_proba(self, X: Any, *, first_line: int | None = None) -> np.ndarray:
        """Class probabilities, a float32 array ``(rows, classes)`` in ``classes_`` order.

        Raises:
            DataError: a feature column is missing, a numeric value is text, or (with
                ``unseen="error"``) a value was not seen in training; the message names it.
            ConfigError: the bundle predicts numbers, not classes.
        """
        if self.task_ != CLASSIFICATION:
            raise ConfigError(
                f"{self.path_}: this model predicts numbers ({self.schema_.target}); "
                "use predict(), it has no class probabilities"
            )
        return self._forward(X, first_line)

    def predict(self, X: Any, *, first_line: int | None = None) -> np.ndarray:
        """The class of each row (class names), or its predicted number.

        The class is ``argmax(probabilities * decision_weights_)``: the per-class weights
        tuned on validation (the bundle's ``decision_weights``), or plain argmax where the
        bundle has none (``decision_weights_`` is ``None``).
        """
        outputs = self._forward(X, first_line)
        if self.task_ != CLASSIFICATION:
            return outputs
        return self._decide(outputs)

    def _decide(self, probabilities: np.ndarray) -> np.ndarray:
        scores = probabilities.astype(np.float64)
        if self.decision_weights_ is not None:
            scores = scores * self.decision_weights_
        result: np.ndarray = self.classes_[scores.argmax(axis=1)]
        return result

    def predict_frame(self, X: Any, *, first_line: int | None = None) -> pd.DataFrame:
        """``X`` with ``predicted_<target>`` and, for classes, one ``proba_<class>`` each."""
        frame = as_frame(X)
        outputs = self._forward(frame, first_line)
        names = [f"predicted_{self.schema_.target}"]
        if self.task_ == CLASSIFICATION:
            names += [f"proba_{c}" for c in self.classes_]
        clashes = [name for name in names if name in frame.columns]
        if clashes:
            raise DataError(f"input: already has a column {clashes[0]!r}; drop or rename it")
        result = frame.copy()
        if self.task_ != CLASSIFICATION:
            result[names[0]] = outputs
            return result
        result[names[0]] = self._decide(outputs)
        for name, column in zip(names[1:], outputs.T, strict=True):
            result[name] = column
        return result

    def encode(self, X: Any, *, first_line: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The model's inputs: int64 codes and float32 numbers (NaN where missing)."""
        frame = clean_features(as_frame(X), self.schema_)
        if self.unseen == "most_frequent":
            frame = replace_unseen(frame, self.schema_, self.most_frequent_)
        try:
            codes = encode_codes(
                frame, self.schema_, unseen="error" if self.unseen == "error" else "unknown"
            )
        except DataError as error:
            raise DataError(f"{error}{self._v1_hint()}") from None
        return codes, encode_numbers(frame, self.schema_, first_line=first_line)

    def _forward(self, X: Any, first_line: int | None) -> np.ndarray:
        codes, numbers = self.encode(X, first_line=first_line)
        parts = []
        with torch.inference_mode():
            for start in range(0, len(codes), CHUNK_ROWS):
                stop = start + CHUNK_ROWS
                inputs = torch.as_tensor(codes[start:stop]), torch.as_tensor(numbers[start:stop])
                parts.append(self.model_(*inputs).numpy())
        if parts:
            return np.concatenate(parts)
        width = (len(self.classes_),) if self.task_ == CLASSIFICATION else ()
        return np.empty((0, *width), dtype=np.float32)

    def _v1_hint(self) -> str:
        columns = self.schema_.columns
        if self.unseen == "error" or not columns or columns[0].categories[:1] == (UNKNOWN,):
            return ""
        return (
            " (this version-1 bundle has no <unknown> code: load it with "
            "unseen='most_frequent', or export the study again)"
        )


def load(path: str | Path, *, unseen: Unseen = "unknown") -> Predictor:
    """The predictor of the bundle in folder ``path``.

    Raises:
        BundleError: the bundle is incomplete, changed or malformed.
        PluginError: its model plugin is not installed.
    """
    return Predictor(read_bundle(path), unseen=unseen)


def load_best(
    study: str | None = None, *, storage: str = DEFAULT_STORAGE, unseen: Unseen = "unknown"
) -> Predictor:
    """The predictor of a stored study's best trial, from the study's bundle.

    Raises:
        BundleError: the bundle records another storage or study than ``storage`` and
            ``study`` (one copied or exported over it); ``carsearch export`` writes a fresh one.
        StudyError: no such study, no bundle, or the bundle is of another trial than the
            current best (the study went on after it was exported); ``carsearch export``
            writes a fresh one.
    """
    found = open_existing(study, storage)
    path = bundle_path(found)
    remedy = f"run: carsearch export --study {found.study_name} --storage {shown_url(storage)}"
    if path is None:
        raise StudyError(f"study {found.study_name!r} has no exported bundle; {remedy}")
    predictor = load(path, unseen=unseen)
    check_origin(predictor.manifest_, path, storage=storage, study=found.study_name)
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
    """The schema's columns of ``frame``; categorical ones as training read them (strings,
    ``<missing>``), numeric ones as given (they are parsed when encoded).

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
    columns = {name: missing_to_category(frame[name]) for name in schema.categorical_names}
    columns.update({name: frame[name] for name in schema.numeric_names})
    return pd.DataFrame(columns, index=frame.index)


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
