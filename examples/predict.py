"""Load the best model of a study and predict a few cars.

Run it with ``python examples/predict.py``: it first runs a tiny search on the Car Evaluation
data in a temporary SQLite file. Give your own study to skip the search::

    python examples/predict.py --study car_evaluation --storage sqlite:///studies/carsearch.db
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import pandas as pd

import carsearch

#: Four cars, columns named as in the training table (the order does not matter).
CARS = pd.DataFrame(
    {
        "price": ["vhigh", "low", "med", "low"],
        "maint": ["vhigh", "low", "med", "med"],
        "doors": ["2", "4", "3", "5more"],
        "persons": ["2", "4", "more", "4"],
        "lug_capacity": ["small", "big", "med", "big"],
        "safety": ["low", "high", "med", "high"],
    }
)


def show(model: carsearch.Predictor) -> None:
    probabilities = pd.DataFrame(model.predict_proba(CARS), columns=model.classes_).round(3)
    print(CARS.assign(predicted=model.predict(CARS)).join(probabilities).to_string(index=False))
    odd = CARS.head(1).assign(price="free")  # a value the model never saw
    print(f"an unseen price is <unknown>: {model.predict(odd)[0]}")
    strict = carsearch.load(model.path_, unseen="error")
    try:
        strict.predict(odd)
    except carsearch.DataError as error:
        print(f"with unseen='error', refused: {error}")
    lenient = carsearch.load(model.path_, unseen="most_frequent")
    print(f"with unseen='most_frequent': {lenient.predict(odd)[0]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--study", help="a study that `carsearch run` made (default: search now)")
    parser.add_argument("--storage", default="sqlite:///studies/carsearch.db")
    args = parser.parse_args()
    if args.study:
        show(carsearch.load_best(args.study, storage=args.storage))
        return
    with tempfile.TemporaryDirectory() as folder:
        storage = f"sqlite:///{Path(folder) / 'predict.db'}"
        carsearch.run(n_trials=3, max_epochs=10, seed=0, refit_seeds=2, storage=storage)
        show(carsearch.load_best("car_evaluation", storage=storage))


if __name__ == "__main__":
    main()
