"""Wall time of one search with ``--jobs 1`` and ``--jobs 2``, measured in one invocation.

Each run is ``carsearch run --trials N --jobs J --json`` on Car Evaluation, with the same
seed, on a fresh SQLite file in a temporary folder, so every run does the whole search
(and its refit) and the runs differ only in their number of worker processes. Prints one row
per run (wall time, trials per second, trial counts, test accuracy) and the speed-up.

Run it on a quiet machine, with no other work on the cores (torch collapses when its
threads outnumber free cores)::

    CARSEARCH_DATA_HOME=/work/shared/data python bench/jobs.py            # 100 trials
    CARSEARCH_DATA_HOME=/work/shared/data python bench/jobs.py --trials 6  # a smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100, help="trials per run (default 100)")
    parser.add_argument(
        "--jobs", type=int, nargs="+", default=[1, 2], help="worker counts (default: 1 2)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"Car Evaluation, {args.trials} trials, seed {args.seed}, {cores} cores")
    rows = [measure(jobs, args.trials, args.seed) for jobs in args.jobs]
    print(format_table(rows))
    base = rows[0]
    for row in rows[1:]:
        ratio = base["wall"] / row["wall"]
        print(f"speed-up of --jobs {row['jobs']} over --jobs {base['jobs']}: {ratio:.2f}x")
    return 0


def measure(jobs: int, n_trials: int, seed: int) -> dict[str, Any]:
    """One ``carsearch run`` with ``jobs`` workers on a fresh study; its wall time and summary."""
    with tempfile.TemporaryDirectory(prefix="carsearch-jobs-") as folder:
        command = [
            sys.executable,
            "-m",
            "carsearch.cli",
            "run",
            f"--trials={n_trials}",
            f"--jobs={jobs}",
            f"--seed={seed}",
            f"--storage=sqlite:///{Path(folder) / 'studies.db'}",
            "--json",
        ]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"--jobs {jobs} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    return {"jobs": jobs, "wall": wall, "summary": summary}


def format_table(rows: list[dict[str, Any]]) -> str:
    """The runs as a Markdown table."""
    lines = [
        "| jobs | wall s | trials/s | complete | pruned | failed | test accuracy |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        summary = row["summary"]
        finished = summary["n_complete"] + summary["n_pruned"]
        lines.append(
            f"| {row['jobs']} | {row['wall']:.1f} | {finished / row['wall']:.2f} "
            f"| {summary['n_complete']} | {summary['n_pruned']} | {summary['n_failed']} "
            f"| {summary['test']['accuracy']:.4f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
