"""What a user would run instead of carsearch: RealMLP-TD and LightGBM with their defaults.

Used by ``bench/tables.py`` (methods ``RealMLP-TD`` and ``LightGBM``), fitted on carsearch's
own train + validation rows of a seed and scored on its test rows, as the scikit-learn
references are. Needs the ``bench`` extra (``pytabkit``, ``lightgbm``).

- **RealMLP-TD** (Holzmüller, Grinsztajn and Steinwart, "Better by Default: Strong Pre-Tuned
  MLPs and Boosted Trees on Tabular Data", NeurIPS 2024; ``pytabkit``):
  ``RealMLP_TD_Classifier`` / ``RealMLP_TD_Regressor(random_state=0, n_threads=1)``, the
  paper's defaults (256 epochs), no search. pytabkit refuses NaN in numeric columns, so
  missing numbers are filled with the training median first (as AutoGluon's wrapper does).
- **LightGBM**: ``LGBMClassifier`` / ``LGBMRegressor(random_state=0, n_jobs=1, verbose=-1)``.

Both get categorical columns as pandas ``category`` dtype, the test rows' categories aligned
to the training ones (a category unseen in training is missing).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

ANCHORS = ("RealMLP-TD", "LightGBM")


def fit_predict(
    method: str,
    train: pd.DataFrame,
    y_train: np.ndarray,
    test: pd.DataFrame,
    categorical: list[str],
    task: str,
) -> np.ndarray:
    """Fit ``method`` with its defaults on ``train`` and predict ``test``'s rows."""
    train, test = as_categories(train, test, categorical)
    numeric = [c for c in train.columns if c not in categorical]
    if method == "RealMLP-TD":
        medians = train[numeric].median()
        train = train.fillna(dict(medians))
        test = test.fillna(dict(medians))
    model = anchor_model(method, task)
    model.fit(train, y_train)
    return np.asarray(model.predict(test))


def anchor_model(method: str, task: str) -> Any:
    """The anchor's estimator with its published defaults, one thread, seed 0."""
    classify = task == "classification"
    if method == "RealMLP-TD":
        from pytabkit import RealMLP_TD_Classifier, RealMLP_TD_Regressor

        realmlp = RealMLP_TD_Classifier if classify else RealMLP_TD_Regressor
        return realmlp(random_state=0, n_threads=1, device="cpu")
    if method == "LightGBM":
        from lightgbm import LGBMClassifier, LGBMRegressor

        boosted = LGBMClassifier if classify else LGBMRegressor
        return boosted(random_state=0, n_jobs=1, verbose=-1)
    raise ValueError(f"unknown anchor {method!r}; known: {', '.join(ANCHORS)}")


def as_categories(
    train: pd.DataFrame, test: pd.DataFrame, categorical: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Copies with ``categorical`` as ``category`` dtype, test's aligned to train's levels."""
    train, test = train.copy(), test.copy()
    for column in categorical:
        levels = pd.Categorical(train[column].astype(str)).categories
        train[column] = pd.Categorical(train[column].astype(str), categories=levels)
        test[column] = pd.Categorical(test[column].astype(str), categories=levels)
    return train, test
