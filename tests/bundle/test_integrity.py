"""A bundle's integrity file: what it lists, old bundles without one, tampering from the CLI."""

from __future__ import annotations

import json
import logging
import os
import pickle
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

import carsearch
from carsearch.bundle.format import MANIFEST, TORCHSCRIPT, WEIGHTS, sha256
from carsearch.bundle.integrity import INTEGRITY
from carsearch.bundle.predictor import load
from helpers import make_frame, tiny_config

#: Address space of a CLI process under test: a read without bound fails, it cannot exhaust
#: the machine.
MEMORY_LIMIT = 3 << 30


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    config = tiny_config(tmp_path_factory.mktemp("integrity"), n_trials=2, max_epochs=2)
    return Path(carsearch.run(config).summary.bundle)


@pytest.fixture
def copy(bundle: Path, tmp_path: Path) -> Path:
    copied = tmp_path / "bundle"
    shutil.copytree(bundle, copied)
    return copied


def test_the_integrity_file_lists_every_other_file(bundle: Path) -> None:
    record = json.loads((bundle / INTEGRITY).read_text())
    assert record["format"] == "carsearch-integrity" and record["algorithm"] == "sha256"
    others = {file.name for file in bundle.iterdir()} - {INTEGRITY}
    assert {MANIFEST, WEIGHTS, TORCHSCRIPT} <= others
    assert set(record["files"]) == others
    for name, entry in record["files"].items():
        data = (bundle / name).read_bytes()
        assert entry == {"sha256": sha256(data), "bytes": len(data)}


def test_a_bundle_from_before_integrity_files_loads_with_a_warning(
    bundle: Path, copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (copy / INTEGRITY).unlink()
    rows = make_frame(10, seed=1)
    with caplog.at_level(logging.WARNING, logger="carsearch"):
        old = load(copy)
    assert f"no {INTEGRITY}" in caplog.text and "export the study again" in caplog.text
    np.testing.assert_array_equal(old.predict_proba(rows), load(bundle).predict_proba(rows))


def reverse_classes(bundle: Path) -> None:
    manifest = json.loads((bundle / MANIFEST).read_text())
    manifest["classes"].reverse()
    manifest["schema"]["classes"].reverse()
    (bundle / MANIFEST).write_text(json.dumps(manifest, indent=2))


class Payload:
    def __reduce__(self) -> tuple:
        return (os.system, ("echo pwned",))


def hostile_weights(bundle: Path) -> None:
    """A plain pickle (protocol 4) the manifest and the integrity file vouch for."""
    from carsearch.bundle.integrity import seal_folder

    data = pickle.dumps({"x": Payload()}, protocol=4)
    (bundle / WEIGHTS).write_bytes(data)
    manifest = json.loads((bundle / MANIFEST).read_text())
    manifest["files"][WEIGHTS] = {"sha256": sha256(data), "bytes": len(data)}
    (bundle / MANIFEST).write_text(json.dumps(manifest, indent=2))
    seal_folder(bundle)


def manifest_to_dev_zero(bundle: Path) -> None:
    (bundle / MANIFEST).unlink()
    (bundle / MANIFEST).symlink_to("/dev/zero")


TAMPERED: dict[str, tuple[Callable[[Path], object], str]] = {
    "reversed classes": (reverse_classes, "model.json: its sha256 differs"),
    "hostile pickle": (hostile_weights, "weights.pt: not a weights file torch can load safely"),
    "model.json a link to /dev/zero": (manifest_to_dev_zero, "model.json: not a regular file"),
}


def limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


@pytest.mark.parametrize("case", TAMPERED)
def test_carsearch_predict_on_a_tampered_bundle_prints_one_error_line(
    case: str, copy: Path, tmp_path: Path
) -> None:
    tamper, message = TAMPERED[case]
    tamper(copy)
    data = tmp_path / "cars.csv"
    make_frame(5).to_csv(data, index=False)
    command = [sys.executable, "-m", "carsearch.cli", "predict", "--model", str(copy)]
    done = subprocess.run(
        [*command, "--input", str(data)],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=limit_memory,
        env={**os.environ, "PYTHONWARNINGS": "default"},
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert message in done.stderr and "pwned" not in done.stderr
