"""Bundles go only where nothing of the user's can be lost: a missing, empty or bundle folder.

``--out`` once named the working folder and the replace step deleted it, study database
included. These tests hold folders of user files and check every byte afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

import carsearch
from carsearch import BundleError, RunConfig
from carsearch.bundle.folders import MAX_MANIFEST_BYTES, check_out_folder
from carsearch.bundle.format import FORMAT, MANIFEST, WEIGHTS
from carsearch.cli import main
from helpers import tiny_config

TINY_RUN = ["--max-epochs", "1", "--patience", "1", "--refit-seeds", "1", "--device", "cpu"]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones too), by relative path."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def user_folder(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "thesis.tex").write_text("six years of work\n")
    (folder / "data").mkdir(exist_ok=True)
    (folder / "data" / "cars.csv").write_text("a,b\n1,2\n")
    return folder


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> RunConfig:
    """A stored tiny study with its bundle, in a folder that also holds the user's files."""
    folder = user_folder(tmp_path_factory.mktemp("work"))
    storage = f"sqlite:///{folder / 'studies' / 'carsearch.db'}"
    config = tiny_config(folder, storage=storage, n_trials=1, max_epochs=1, refit_seeds=1)
    carsearch.run(config)
    return config


def one_error_line(stderr: str, folder: Path) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert f"{folder.resolve()}:" in lines[0]
    return lines[0]


@pytest.mark.parametrize("out", [".", "studies"], ids=["working-folder", "storage-folder"])
def test_run_out_on_a_folder_of_user_files_refuses_and_leaves_every_file(
    searched: RunConfig, out: str
) -> None:
    work = Path(searched.data or "").parent
    before = snapshot(work)
    command = [sys.executable, "-m", "carsearch.cli", "run", "--trials", "2", "--study", "s"]
    storage = ["--storage", "sqlite:///studies/carsearch.db", "--data", "tiny.csv"]
    done = subprocess.run(
        [*command, *storage, "--out", out, *TINY_RUN],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1
    assert "not a carsearch bundle" in one_error_line(done.stderr, work / out)
    assert snapshot(work) == before
    stored = optuna.get_all_study_names(storage=searched.storage)
    assert stored == ["tiny"]  # refused before the search: study 's' was never made


def test_run_checks_the_default_folder_before_searching(tmp_path: Path) -> None:
    config = tiny_config(tmp_path, study_name="taken")
    taken = user_folder(tmp_path / "studies" / "taken" / "best")  # where its bundle would go
    before = snapshot(taken)
    with pytest.raises(BundleError, match="not a carsearch bundle"):
        carsearch.run(config)
    assert snapshot(taken) == before
    assert optuna.get_all_study_names(storage=config.storage) == []


def test_export_out_on_a_folder_of_user_files_refuses_and_leaves_them(
    searched: RunConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = user_folder(tmp_path / "mine")
    before = snapshot(mine)
    assert main(["export", "--storage", searched.storage, "--out", str(mine)]) == 1
    one_error_line(capsys.readouterr().err, mine)
    assert snapshot(mine) == before


def test_export_writes_into_an_empty_folder_then_replaces_its_bundle(
    searched: RunConfig, tmp_path: Path
) -> None:
    out = tmp_path / "model"
    out.mkdir()
    assert main(["export", "--storage", searched.storage, "--out", str(out)]) == 0
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["format"] == FORMAT
    (out / MANIFEST).write_text(json.dumps({**manifest, "stale": True}))  # still a bundle
    assert main(["export", "--storage", searched.storage, "--out", str(out)]) == 0
    assert "stale" not in json.loads((out / MANIFEST).read_text())
    assert carsearch.load(out).n_features_in_ == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no staging left


def test_export_never_removes_sibling_folders_it_did_not_make(
    searched: RunConfig, tmp_path: Path
) -> None:
    """Folders named like carsearch's staging and old folders are the user's: kept."""
    names = [f".best.{kind}-{os.getpid()}" for kind in ("partial", "old")]
    siblings = [user_folder(tmp_path / name) for name in names]
    before = {folder.name: snapshot(folder) for folder in siblings}
    out = tmp_path / "best"
    for _ in range(2):  # writes, then replaces the bundle
        assert main(["export", "--storage", searched.storage, "--out", str(out)]) == 0
    assert {folder.name: snapshot(folder) for folder in siblings} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["best", *before])
    assert (out / WEIGHTS).is_file()


@pytest.mark.parametrize("content", ["", "{", "[1]", '{"format": "other"}', "[" * 100_000])
def test_a_model_json_of_another_kind_is_not_a_bundle(tmp_path: Path, content: str) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / MANIFEST).write_text(content)
    with pytest.raises(BundleError, match="not a carsearch bundle"):
        check_out_folder(folder)
    assert (folder / MANIFEST).read_text() == content


def test_a_huge_or_endless_model_json_is_read_no_further_than_the_bound(tmp_path: Path) -> None:
    huge = tmp_path / "huge"
    huge.mkdir()
    padding = " " * MAX_MANIFEST_BYTES
    (huge / MANIFEST).write_text(f'{{"format": "{FORMAT}"{padding}}}')
    endless = tmp_path / "endless"
    endless.mkdir()
    (endless / MANIFEST).symlink_to("/dev/zero")
    pipe = tmp_path / "pipe"
    pipe.mkdir()
    os.mkfifo(pipe / MANIFEST)  # opening it to read would wait for a writer forever
    for folder in (huge, endless, pipe):
        with pytest.raises(BundleError, match="not a carsearch bundle"):
            check_out_folder(folder)


def test_missing_empty_and_bundle_folders_are_accepted(tmp_path: Path) -> None:
    assert check_out_folder(tmp_path / "new" / "best") == (tmp_path / "new" / "best").resolve()
    (tmp_path / "empty").mkdir()
    assert check_out_folder(tmp_path / "empty") == (tmp_path / "empty").resolve()
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / MANIFEST).write_text(json.dumps({"format": FORMAT, "format_version": 2}))
    assert check_out_folder(bundle) == bundle.resolve()
    (tmp_path / "file").write_text("x")
    with pytest.raises(BundleError, match="is not a folder"):
        check_out_folder(tmp_path / "file")
