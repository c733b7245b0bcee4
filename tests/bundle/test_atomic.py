"""Bundles are replaced whole: an export that cannot finish leaves the previous one loadable.

The disk fills for real: the export runs in a child process whose files may not grow past
a size limit (``RLIMIT_FSIZE``), smaller than the weights file it must write.
"""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import carsearch
from carsearch.bundle.format import WEIGHTS
from helpers import make_frame, tiny_config


def files_of(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE as Linux applies it")
def test_an_export_that_runs_out_of_space_leaves_the_previous_bundle(tmp_path: Path) -> None:
    config = tiny_config(tmp_path, n_trials=2, max_epochs=2, refit_seeds=2)
    bundle = carsearch.run(config).bundle
    before = files_of(bundle)
    rows = make_frame(seed=1).drop(columns="label")
    predicted = carsearch.load(bundle).predict_proba(rows)
    limit = len(before[WEIGHTS]) // 2  # the new weights file cannot be written whole

    def small_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past it fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    export = [sys.executable, "-m", "carsearch.cli", "export", "--storage", config.storage]
    done = subprocess.run(export, preexec_fn=small_disk, capture_output=True, text=True)

    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if not line.startswith("carsearch: ")]
    assert errors == [  # after the steps' progress lines, one error line
        f"error: cannot write the bundle to {bundle}: File too large; "
        "the previous bundle there is unchanged"
    ]
    assert files_of(bundle) == before
    assert sorted(p.name for p in bundle.parent.iterdir()) == ["best"]  # no staging left
    assert np.array_equal(carsearch.load(bundle).predict_proba(rows), predicted)
