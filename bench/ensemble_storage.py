"""Bytes per trial that the kept validation predictions add to a study's storage.

    python bench/ensemble_storage.py

Predictions are realistic in kind (softmax probabilities of a trained-looking model, or
numbers), float32, zlib + base64 in a JSON user attribute (carsearch.ensemble.predictions).
"""

from __future__ import annotations

import json

import numpy as np

from carsearch.ensemble.predictions import MAX_VALUES, encode, kept_rows


def probabilities(rows: int, classes: int, rng: np.random.Generator) -> np.ndarray:
    logits = rng.normal(scale=4.0, size=(rows, classes))
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def main() -> None:
    rng = np.random.default_rng(0)
    cases = [
        ("car evaluation: 277 rows x 4 classes", 277, 4),
        ("10,000 rows x 4 classes", 10_000, 4),
        ("10,000 rows x 1 number", 10_000, 1),
        ("1,000,000 rows x 2 classes", 1_000_000, 2),
    ]
    print(f"at most {MAX_VALUES} values kept per trial")
    for name, rows, outputs in cases:
        kept = kept_rows(rows, outputs, seed=0)
        full = (
            probabilities(len(kept), outputs, rng)
            if outputs > 1
            else rng.normal(size=len(kept)) * 1e4
        )
        stored = len(json.dumps(encode(full)))
        raw = full.astype(np.float32).nbytes
        print(
            f"{name:38s} kept rows {len(kept):6d}  float32 {raw:7d} B  "
            f"stored {stored:7d} B per trial ({stored / max(raw, 1):.2f}x)"
        )


if __name__ == "__main__":
    main()
