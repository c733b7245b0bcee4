"""carsearch against a search written the Optuna-tutorial way, on the same 100-trial budget.

The tutorial way (Optuna's ``pytorch_simple.py`` applied to this data): the textbook model
with one ``nn.Embedding`` per column, a ``DataLoader`` with batch size 32, carsearch's epoch
cap as its fixed number of epochs per trial, validation accuracy reported every epoch to a
``MedianPruner``, a seeded TPE sampler and SQLite storage; the best trial's model is scored
on the test split. It samples the same search space (the same ``suggest`` code), except
that its batch size is the tutorial's 32 and it has no LR scheduler.

carsearch: ``carsearch.run`` with its defaults (refit included).

Run ``python bench/speed.py`` on a quiet machine (close other work: torch collapses when its
threads outnumber free cores); it prints both wall times, the ratio and both test macro-F1s.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import optuna
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import carsearch
from carsearch import RunConfig
from carsearch.data.prepare import Prepared, prepare
from carsearch.data.schema import Schema
from carsearch.search.space import suggest
from carsearch.training.device import derive_seed, seed_everything, set_threads
from carsearch.training.metrics import Scores, classification_scores

#: The same epoch cap as carsearch's, so both searches get the same budget of trials and epochs.
TUTORIAL_EPOCHS = RunConfig().max_epochs
TUTORIAL_BATCH = 32


class TextbookModel(nn.Module):
    """The textbook's model: a ModuleList of embeddings, concatenated, then the layers."""

    def __init__(self, schema: Schema, dims: tuple[int, ...], params: dict) -> None:
        super().__init__()
        self.embeddings = nn.ModuleList(
            nn.Embedding(n, d) for n, d in zip(schema.cardinalities, dims, strict=True)
        )
        self.embedding_dropout = nn.Dropout(params["embedding_dropout"])
        layers: list[nn.Module] = []
        width = sum(dims)
        for i in range(params["n_layers"]):
            units = params[f"n_units_l{i}"]
            layers += [nn.Linear(width, units), nn.ReLU()]
            if params["batch_norm"]:
                layers.append(nn.BatchNorm1d(units))
            layers.append(nn.Dropout(params["dropout"]))
            width = units
        layers.append(nn.Linear(width, len(schema.classes)))
        self.layers = nn.Sequential(*layers)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        columns = [table(codes[:, j]) for j, table in enumerate(self.embeddings)]
        return self.layers(self.embedding_dropout(torch.cat(columns, dim=1)))


def tutorial_search(config: RunConfig, prepared: Prepared, storage: str) -> Scores:
    """The hand-written Optuna search; returns the best trial's test scores."""
    schema = prepared.search.schema
    train = TensorDataset(*_tensors(prepared, prepared.split.train))
    val_x, val_y = _tensors(prepared, prepared.split.val)
    test_x, test_y = _tensors(prepared, prepared.split.test)
    models: dict[int, nn.Module] = {}

    def objective(trial: optuna.Trial) -> float:
        recipe = suggest(trial, config, schema, len(prepared.split.train))
        seed_everything(derive_seed(config.seed, trial.number))
        model = TextbookModel(schema, recipe.embedding_dims, recipe.params)
        optimizer = recipe.build_optimizer(model)
        loader = DataLoader(train, batch_size=TUTORIAL_BATCH, shuffle=True)
        accuracy = 0.0
        for epoch in range(TUTORIAL_EPOCHS):
            model.train()
            for x, y in loader:
                if len(y) < 2:
                    continue
                optimizer.zero_grad()
                nn.functional.cross_entropy(model(x), y).backward()
                optimizer.step()
            model.eval()
            with torch.no_grad():
                accuracy = (model(val_x).argmax(1) == val_y).float().mean().item()
            trial.report(accuracy, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        models[trial.number] = model
        return accuracy

    study = optuna.create_study(
        storage=storage,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=config.seed),
        pruner=optuna.pruners.MedianPruner(),
    )
    study.optimize(objective, n_trials=config.n_trials)
    best = models[study.best_trial.number].eval()
    with torch.no_grad():
        return classification_scores(best(test_x).softmax(-1), test_y)


def _tensors(prepared: Prepared, rows) -> tuple[torch.Tensor, torch.Tensor]:
    encoded = prepared.search
    return torch.as_tensor(encoded.codes[rows]), torch.as_tensor(encoded.y[rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    set_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        config = RunConfig(
            n_trials=args.trials,
            seed=args.seed,
            device="cpu",
            storage=f"sqlite:///{Path(folder) / 'carsearch.db'}",
        )
        prepared = prepare(config)
        started = time.perf_counter()
        tutorial = tutorial_search(config, prepared, f"sqlite:///{Path(folder) / 'tut.db'}")
        tutorial_seconds = time.perf_counter() - started
        started = time.perf_counter()
        ours = carsearch.run(config).refit.test
        ours_seconds = time.perf_counter() - started
    print(f"{args.trials} trials, seed {args.seed}, torch {torch.__version__}, 1 thread, CPU")
    print(f"{'':<22}{'wall s':>9}{'test acc':>10}{'macro-F1':>10}")
    print(
        f"{'Optuna tutorial way':<22}{tutorial_seconds:>9.1f}{tutorial['accuracy']:>10.4f}"
        f"{tutorial['macro_f1']:>10.4f}"
    )
    print(
        f"{'carsearch':<22}{ours_seconds:>9.1f}{ours['accuracy']:>10.4f}{ours['macro_f1']:>10.4f}"
    )
    better = ours["macro_f1"] >= tutorial["macro_f1"]
    print(
        f"speed-up {tutorial_seconds / ours_seconds:.2f}x; macro-F1 "
        f"{'equal or better' if better else 'WORSE'}"
    )


if __name__ == "__main__":
    main()
