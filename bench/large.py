"""A large table: 1,000,000 rows x 30 mixed columns, read, described and trained one epoch.

Writes the CSV (20 numeric columns, two with missing values; 9 categorical ones of 2 to
5,000 categories, one with missing values; a 3-class target) to a temporary folder, then
runs each stage in a process of its own and reports its seconds and peak memory (the
process's maximum resident set), against the file's size:

* ``read``: :func:`carsearch.read_table`, the file to a checked table;
* ``describe``: ``carsearch describe --data FILE``, the command as users run it (its
  ``main``, in the stage's process);
* ``epoch``: the table read and prepared for a search (split, encoded), a network of the
  default kind built, and one training epoch with validation, on one thread.

Also shows the one-line refusal, before anything is read, of a file that does not fit
in this machine's memory (a sparse file larger than it).

    python bench/large.py                 # 1,000,000 rows
    python bench/large.py --rows 200000   # a quicker look
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scale  # bench/scale.py, next to this script

CHUNK_ROWS = 100_000
N_NUMERIC = 20
CARDINALITIES = (2, 3, 5, 10, 20, 50, 200, 1000, 5000)
STAGES = ("read", "describe", "epoch")
#: bench/scale.py's configuration, with the default search space's first numeric encoder.
PARAMS = {
    **{key: value for key, value in scale.PARAMS.items() if not key.startswith("ple_")},
    "numeric_encoding": "standard",
}


def write_csv(path: Path, n_rows: int, seed: int = 0) -> None:
    """The mixed table, written in chunks so that the bench itself stays small."""
    rng = np.random.default_rng(seed)
    for start in range(0, n_rows, CHUNK_ROWS):
        chunk = _chunk(rng, min(CHUNK_ROWS, n_rows - start))
        chunk.to_csv(path, mode="a", header=start == 0, index=False, float_format="%.5g")


def _chunk(rng: np.random.Generator, n_rows: int) -> pd.DataFrame:
    numbers = rng.normal(size=(n_rows, N_NUMERIC)) * rng.lognormal(0, 2, N_NUMERIC)
    for column in (3, 11):
        numbers[rng.random(n_rows) < 0.05, column] = np.nan
    frame = pd.DataFrame(numbers, columns=[f"x{i}" for i in range(N_NUMERIC)])
    for j, size in enumerate(CARDINALITIES):
        frame[f"c{j}"] = [f"v{k}" for k in rng.integers(0, size, n_rows)]
    frame.loc[rng.random(n_rows) < 0.05, "c4"] = ""
    score = np.nan_to_num(numbers[:, 0] / numbers[:, 0].std()) + (frame["c2"] == "v1") * 1.0
    frame["label"] = np.select([score < -0.5, score < 0.7], ["low", "mid"], "high")
    return frame


def run_stage(stage: str, path: Path) -> dict[str, float]:
    """Run ``stage`` in a child process: its seconds, inside and out, and its peak memory."""
    command = [sys.executable, __file__, "--stage", stage, str(path)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"{stage} failed: {done.stderr.strip().splitlines()[-1:]}")
    return {"wall_s": wall, **json.loads(done.stdout.strip().splitlines()[-1])}


def peak_mb() -> float:
    """This process's largest resident set so far, in MB (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stage_read(path: Path) -> dict[str, float]:
    from carsearch.data.read import read_table

    started = time.perf_counter()
    read_table(path)
    return {"read_s": time.perf_counter() - started, "peak_mb": peak_mb()}


def stage_describe(path: Path) -> dict[str, float]:
    from carsearch.cli import main

    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        status = main(["describe", "--data", str(path)])
    if status:
        raise SystemExit(status)
    return {"describe_s": time.perf_counter() - started, "peak_mb": peak_mb()}


def stage_epoch(path: Path) -> dict[str, float]:
    import torch

    from carsearch import RunConfig
    from carsearch.data.prepare import prepare

    torch.set_num_threads(1)
    started = time.perf_counter()
    config = RunConfig(data=str(path))
    prepared = prepare(config)
    prepared_s = time.perf_counter() - started
    epoch_s, _ = scale.timed_epochs(prepared, config, PARAMS, n_epochs=1)
    return {"prepare_s": prepared_s, "epoch_s": epoch_s, "peak_mb": peak_mb()}


def refusal(folder: Path) -> str:
    """What ``carsearch describe`` says of a file larger than this machine's memory."""
    huge = folder / "huge.csv"
    with huge.open("wb") as file:
        file.truncate(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))  # sparse
    command = [sys.executable, "-m", "carsearch.cli", "describe", "--data", str(huge)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    return f"exit {done.returncode} after {seconds:.1f} s: {done.stderr.strip()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--stage", choices=STAGES, help=argparse.SUPPRESS)
    parser.add_argument("path", nargs="?", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        stages = {"read": stage_read, "describe": stage_describe, "epoch": stage_epoch}
        print(json.dumps(stages[args.stage](args.path)))
        return 0
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "large.csv"
        started = time.perf_counter()
        write_csv(path, args.rows)
        size_mb = path.stat().st_size / 2**20
        print(
            f"{args.rows:,} rows x 30 columns: {size_mb:.0f} MB, written in "
            f"{time.perf_counter() - started:.0f} s\n"
        )
        print("| stage | wall s | inside s | peak MB | peak / file size |")
        print("|---|---:|---:|---:|---:|")
        for stage in STAGES:
            cost = run_stage(stage, path)
            inside = ", ".join(
                f"{key[:-2]} {value:.1f}"
                for key, value in cost.items()
                if key.endswith("_s") and key != "wall_s"
            )
            print(
                f"| {stage} | {cost['wall_s']:.1f} | {inside or '-'} | {cost['peak_mb']:.0f} | "
                f"{cost['peak_mb'] / size_mb:.2f} |"
            )
        print(f"\nA file larger than memory: {refusal(Path(folder))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
