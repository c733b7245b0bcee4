"""carsearch.workers: --jobs N worker processes on one study, SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from pathlib import Path

import optuna
import pytest

import carsearch
from carsearch import RunConfig
from carsearch.bundle.artifacts import default_bundle_dir
from carsearch.data.prepare import Prepared, default_study_name, prepare
from carsearch.exceptions import CarsearchError, ConfigError
from carsearch.search import workers
from carsearch.search.study import count_trials, open_study
from carsearch.search.workers import (
    assign_device,
    run_workers,
    threads_per_worker,
    worker_specs,
)
from carsearch.storage.open import make_storage
from helpers import kill_worker, raise_in_worker


@pytest.mark.parametrize(
    ("n_cores", "n_jobs", "expected"),
    [(2, 1, 2), (2, 2, 1), (2, 4, 1), (16, 2, 8), (16, 3, 5), (1, 8, 1)],
)
def test_threads_per_worker_shares_the_cores(n_cores: int, n_jobs: int, expected: int) -> None:
    assert threads_per_worker(n_cores, n_jobs) == expected


def test_each_worker_owns_one_gpu_round_robin() -> None:
    assert [assign_device("auto", i, 3) for i in range(5)] == [
        "cuda:0",
        "cuda:1",
        "cuda:2",
        "cuda:0",
        "cuda:1",
    ]
    assert [assign_device("cuda", i, 2) for i in range(3)] == ["cuda:0", "cuda:1", "cuda:0"]


@pytest.mark.parametrize("requested", ["cpu", "cuda:1", "mps"])
def test_an_explicit_device_is_kept_by_every_worker(requested: str) -> None:
    assert {assign_device(requested, i, 4) for i in range(3)} == {requested}


def test_without_gpus_auto_is_left_to_each_worker() -> None:
    assert {assign_device("auto", i, 0) for i in range(3)} == {"auto"}


@pytest.mark.parametrize(("n_cores", "threads"), [(16, 4), (6, 1), (2, 1)])
def test_worker_specs_never_oversubscribe(
    fast_config: RunConfig, monkeypatch: pytest.MonkeyPatch, n_cores: int, threads: int
) -> None:
    # This machine has the cores it has; the other counts are machines that are not here.
    monkeypatch.setattr(workers, "available_cores", lambda: n_cores)
    config = fast_config.replace(jobs=4, threads=64)
    specs = worker_specs(config, prepare(config), "tiny")
    assert [spec.index for spec in specs] == [0, 1, 2, 3]
    assert {spec.device for spec in specs} == {"cpu"}
    assert {spec.threads for spec in specs} == {threads}
    one = worker_specs(fast_config.replace(jobs=2), prepare(fast_config), "tiny")
    assert {spec.threads for spec in one} == {1}, "--threads stays the ceiling"


def assert_exactly(study: optuna.Study, n_trials: int) -> None:
    counts = count_trials(study)
    assert counts["complete"] + counts["pruned"] == n_trials, counts
    assert (counts["failed"], counts["running"], counts["waiting"]) == (0, 0, 0), counts
    numbers = [trial.number for trial in study.trials]
    assert numbers == list(range(len(numbers))), "trials lost or numbered twice"


@pytest.mark.slow
def test_four_sqlite_workers_on_two_cores_finish_exactly_the_asked_trials(
    fast_config: RunConfig,
) -> None:
    result = carsearch.run(fast_config.replace(jobs=4, n_trials=12))
    assert_exactly(result.study, 12)
    assert result.summary.n_failed == 0
    trials = result.study.trials
    assert trials[0].user_attrs["origin"] == "textbook"
    params = [tuple(sorted(trial.params.items())) for trial in trials]
    assert len(set(params)) == len(params), "workers must sample apart"
    assert {trial.user_attrs["device"] for trial in trials} == {"cpu"}


@pytest.mark.slow
def test_three_postgresql_workers_join_one_study(
    fast_config: RunConfig, postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a server storage keeps its bundles under ./studies
    name = f"carsearch-test-{uuid.uuid4().hex[:12]}"
    config = fast_config.replace(storage=postgres_url, study_name=name, jobs=3, n_trials=9)
    try:
        result = carsearch.run(config)
        assert_exactly(result.study, 9)
        assert result.summary.storage == postgres_url
        assert (tmp_path / default_bundle_dir(postgres_url, name) / "model.json").is_file()
    finally:
        try:
            optuna.delete_study(study_name=name, storage=make_storage(postgres_url))
        except KeyError:
            pass  # the run failed before it made the study


def prepared_study(config: RunConfig) -> tuple[Prepared, optuna.Study]:
    """The prepared table and opened study that :func:`run_workers` takes."""
    prepared = prepare(config)
    study = open_study(
        config,
        storage=make_storage(config.storage, trial_budget=config.n_trials),
        name=default_study_name(config),
        table=prepared.table,
    )
    return prepared, study


@pytest.mark.slow
def test_a_worker_error_surfaces_in_the_parent(fast_config: RunConfig) -> None:
    config = fast_config.replace(jobs=2, n_trials=6)
    prepared, study = prepared_study(config)
    with pytest.raises(CarsearchError, match=r"2 of 2 workers failed: worker 0: RuntimeError"):
        run_workers(study, config, prepared, callbacks=(raise_in_worker,))


@pytest.mark.slow
def test_workers_killed_outright_are_named_in_one_error(fast_config: RunConfig) -> None:
    # A worker killed by SIGKILL sends nothing: its closed pipe must not end the parent
    # in an EOFError traceback.
    config = fast_config.replace(jobs=2, n_trials=6)
    prepared, study = prepared_study(config)
    expected = r"2 of 2 workers failed: worker 0: killed by SIGKILL; worker 1: killed by SIGKILL"
    with pytest.raises(CarsearchError, match=expected):
        run_workers(study, config, prepared, callbacks=(kill_worker,))
    counts = count_trials(study)  # each stored its first trial before it was killed
    assert (counts["complete"] + counts["pruned"], counts["running"]) == (2, 0), counts


def test_workers_refuse_an_in_memory_study(fast_config: RunConfig) -> None:
    config = fast_config.replace(storage="sqlite:///:memory:", jobs=2)
    with pytest.raises(ConfigError, match=r"--jobs 2 needs a storage its workers can share"):
        carsearch.run(config)
