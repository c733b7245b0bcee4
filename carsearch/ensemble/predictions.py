"""A trial's validation predictions, kept as one compact user attribute of the trial.

Why a user attribute and not an Optuna artifact: attributes live in the study's storage,
so ``--jobs`` workers, PostgreSQL workers on other machines and a resumed study all read
them; an artifact store is a folder that workers on other machines do not share. The
predictions are float32, zlib-compressed and base64-encoded (Optuna stores attributes as
JSON text). They are bounded: at most :data:`MAX_VALUES` numbers per trial (40 KB of
float32; the attribute stays under MySQL's 64 KB ``TEXT``); a larger validation split keeps a
fixed random subset of its rows (:func:`kept_rows`), the same for every trial of a study.
"""

from __future__ import annotations

import base64
import zlib
from typing import Any

import numpy as np

from carsearch.exceptions import StudyError

#: The trial user attribute that holds the predictions.
ATTR = "val_predictions"
#: Most numbers (rows x outputs) kept per trial.
MAX_VALUES = 10_000


def kept_rows(n_rows: int, n_outputs: int, seed: int) -> np.ndarray:
    """The validation rows whose predictions are kept: all of them when ``n_rows x
    n_outputs`` is at most :data:`MAX_VALUES`, else a sorted random subset of
    ``MAX_VALUES // n_outputs`` rows drawn with ``seed`` (the run's: the same rows for
    every trial and worker of a study)."""
    n_kept = MAX_VALUES // max(n_outputs, 1)
    if n_rows <= n_kept:
        return np.arange(n_rows)
    generator = np.random.default_rng(np.random.SeedSequence([seed, n_rows, n_outputs]))
    return np.sort(generator.choice(n_rows, size=n_kept, replace=False))


def encode(predictions: np.ndarray) -> dict[str, Any]:
    """The attribute value of ``predictions`` (``(rows,)`` or ``(rows, classes)``)."""
    values = np.ascontiguousarray(predictions, dtype="<f4")
    packed = zlib.compress(values.tobytes(), level=6)
    return {"shape": list(values.shape), "f4": base64.b64encode(packed).decode("ascii")}


def decode(value: Any) -> np.ndarray:
    """The float32 predictions of an attribute value :func:`encode` made.

    Raises:
        StudyError: ``value`` is not such a value (a damaged attribute).
    """
    try:
        shape = tuple(int(n) for n in value["shape"])
        raw = zlib.decompress(base64.b64decode(value["f4"]), bufsize=4 * MAX_VALUES)
        return np.frombuffer(raw, dtype="<f4").reshape(shape).astype(np.float32)
    except (KeyError, TypeError, ValueError, zlib.error) as error:
        raise StudyError(f"stored validation predictions are damaged: {error}") from None
