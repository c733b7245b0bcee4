"""Search embedding MLPs for the Car Evaluation data from Python, then score the best model.

Run it with ``python examples/quickstart.py``; it keeps its study in a temporary SQLite file.
The data set is found in $CARSEARCH_DATA_HOME, ./data or the user cache, or downloaded.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import carsearch


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        result = carsearch.run(
            n_trials=5,
            max_epochs=20,
            seed=0,
            storage=f"sqlite:///{Path(folder) / 'quickstart.db'}",
            refit_seeds=2,
        )
        summary = result.summary
        assert summary.test is not None  # a run always scores its refit on the test split
        print(f"best trial {summary.best_trial}: {summary.best_params}")
        print(
            f"test accuracy {summary.test['accuracy']:.3f}, macro-F1 {summary.test['macro_f1']:.3f}"
        )


if __name__ == "__main__":
    main()
