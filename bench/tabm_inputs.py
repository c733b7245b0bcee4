"""TabM's own categorical inputs (one-hot, inside ``tabm.TabM``) against carsearch's embeddings.

Both train the same TabM backbone at fixed settings (k 8, 2 blocks of 128, dropout 0.1,
AdamW, 60 epochs, batch 256, the epoch with the best validation log loss kept) on the same
stratified 64/16/20 split of seeds 0, 1, 2, one thread; numeric columns standardized on the
training rows in both. "embedded": one ``nn.Embedding`` per categorical column of the
textbook's size ``min(50, (n + 1) // 2)``, concatenated with the numbers, into
:class:`carsearch.models.tabm.TabMNetwork`. "one-hot": ``tabm.TabM.make`` given the columns'
cardinalities. Prints test accuracy, log loss and seconds per run, and the means.

    python bench/tabm_inputs.py ../shared/data/car_evaluation.csv output
    python bench/tabm_inputs.py ../shared/data/attrition.csv Attrition
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd
import tabm
import torch
from sklearn.model_selection import train_test_split
from torch import nn

from carsearch.models.tabm import TabMNetwork

SETTINGS = {"k": 8, "n_blocks": 2, "d_block": 128, "dropout": 0.1}
EPOCHS, BATCH = 60, 256


class Table:
    """The file as category codes, numbers and class labels."""

    def __init__(self, path: str, target: str) -> None:
        frame = pd.read_csv(path)
        features = [c for c in frame.columns if c != target]
        categorical = [c for c in features if not pd.api.types.is_numeric_dtype(frame[c])]
        self.numeric = [c for c in features if c not in categorical]
        self.codes = torch.tensor(
            np.stack([pd.factorize(frame[c])[0] for c in categorical], 1)
            if categorical
            else np.zeros((len(frame), 0), np.int64)
        )
        self.numbers = frame[self.numeric].to_numpy(np.float32)
        self.labels = torch.tensor(pd.factorize(frame[target])[0])
        self.cardinalities = [int(column.max()) + 1 for column in self.codes.T]
        self.n_classes = int(self.labels.max()) + 1


class Embedded(nn.Module):
    def __init__(self, table: Table) -> None:
        super().__init__()
        sizes = [min(50, (n + 1) // 2) for n in table.cardinalities]
        self.embeddings = nn.ModuleList(
            nn.Embedding(n, size) for n, size in zip(table.cardinalities, sizes, strict=True)
        )
        width = sum(sizes) + len(table.numeric)
        self.network = TabMNetwork(width, table.n_classes, arch_type="tabm", **SETTINGS)

    def forward(self, codes: torch.Tensor, numbers: torch.Tensor) -> torch.Tensor:
        embedded = [embedding(codes[:, i]) for i, embedding in enumerate(self.embeddings)]
        return self.network(torch.cat([*embedded, numbers], 1))


class OneHot(nn.Module):
    def __init__(self, table: Table) -> None:
        super().__init__()
        self.has_numbers = bool(table.numeric)
        self.network = tabm.TabM.make(
            n_num_features=len(table.numeric),
            cat_cardinalities=table.cardinalities,
            d_out=table.n_classes,
            **SETTINGS,
        )

    def forward(self, codes: torch.Tensor, numbers: torch.Tensor) -> torch.Tensor:
        return self.network(numbers if self.has_numbers else None, codes)


def split(table: Table, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows, labels = np.arange(len(table.labels)), table.labels.numpy()
    train, test = train_test_split(rows, test_size=0.2, stratify=labels, random_state=seed)
    train, val = train_test_split(train, test_size=0.2, stratify=labels[train], random_state=seed)
    return train, val, test


def probabilities(model: nn.Module, codes: torch.Tensor, numbers: torch.Tensor) -> torch.Tensor:
    """The k members' class probabilities, averaged."""
    model.eval()
    with torch.no_grad():
        return model(codes, numbers).softmax(-1).mean(1)


def run(kind: type[nn.Module], table: Table, seed: int) -> tuple[float, float, float]:
    """Test accuracy, test log loss and seconds of one model on one seed's split."""
    train, val, test = split(table, seed)
    mean, std = table.numbers[train].mean(0), table.numbers[train].std(0) + 1e-6
    codes, numbers, labels = table.codes, torch.tensor((table.numbers - mean) / std), table.labels
    torch.manual_seed(seed)
    model = kind(table)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=3e-4)
    best, kept, started = float("inf"), model.state_dict(), time.perf_counter()
    for _ in range(EPOCHS):
        model.train()
        for batch in torch.tensor(train)[torch.randperm(len(train))].split(BATCH):
            outputs = model(codes[batch], numbers[batch])  # (rows, k, classes)
            targets = labels[batch].repeat_interleave(outputs.shape[1])
            loss = nn.functional.cross_entropy(outputs.flatten(0, 1), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        val_loss = nn.functional.nll_loss(
            probabilities(model, codes[val], numbers[val]).log(), labels[val]
        ).item()
        if val_loss < best:
            best, kept = val_loss, {k: t.clone() for k, t in model.state_dict().items()}
    model.load_state_dict(kept)
    predicted = probabilities(model, codes[test], numbers[test])
    accuracy = (predicted.argmax(1) == labels[test]).float().mean().item()
    log_loss = nn.functional.nll_loss(predicted.log(), labels[test]).item()
    return accuracy, log_loss, time.perf_counter() - started


def main() -> int:
    torch.set_num_threads(1)
    table = Table(sys.argv[1], sys.argv[2])
    for name, kind in (("embedded", Embedded), ("one-hot", OneHot)):
        results = [run(kind, table, seed) for seed in (0, 1, 2)]
        runs = "  ".join(f"{a:.4f} / {loss:.4f} / {s:.1f} s" for a, loss, s in results)
        accuracy, log_loss = np.mean([r[0] for r in results]), np.mean([r[1] for r in results])
        print(f"{name:9} {runs}  mean accuracy {accuracy:.4f}, log loss {log_loss:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
