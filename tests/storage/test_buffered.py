"""The storage hot path stores what the plain path stores, and decides the same prunings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest

import carsearch
from carsearch import RunConfig
from carsearch.storage.buffered import BufferedStorage
from carsearch.storage.open import make_storage
from carsearch.storage.seam import trial_storage
from helpers import tiny_config


def stored(storage: str, name: str = "tiny") -> list[tuple[Any, ...]]:
    """Every trial as the database holds it, minus what differs by nature (times, devices)."""
    study = optuna.load_study(study_name=name, storage=storage)
    return [
        (
            t.number,
            t.state,
            t.params,
            t.value,
            t.intermediate_values,
            {k: v for k, v in t.user_attrs.items() if k != "device"},
            {k: v for k, v in t.system_attrs.items() if k.startswith("completed_rung")},
        )
        for t in study.get_trials()
    ]


@pytest.mark.slow
def test_buffered_and_live_writes_store_the_same_trials_and_prunings(tmp_path: Path) -> None:
    config = tiny_config(tmp_path, n_trials=12, max_epochs=8, patience=8, refit_seeds=1)
    runs = {}
    for live in (False, True):
        storage = f"sqlite:///{tmp_path / f'live-{live}.db'}"
        carsearch.run(config.replace(storage=storage, live_writes=live))
        runs[live] = stored(storage)
    assert runs[False] == runs[True]
    states = {trial[1] for trial in runs[False]}
    assert optuna.trial.TrialState.PRUNED in states  # the pruner had decisions to make
    assert any(trial[6] for trial in runs[False])  # and rungs were recorded


def test_a_running_trial_is_read_from_memory_and_written_at_its_end(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'b.db'}"
    buffered = BufferedStorage(make_storage(url))
    study = optuna.create_study(storage=buffered, study_name="b")
    trial = study.ask()
    trial.suggest_float("x", 0.0, 1.0)
    for step in range(5):
        trial.report(float(step), step)
    on_disk = optuna.load_study(study_name="b", storage=url).trials[0]
    assert on_disk.params == {} and on_disk.intermediate_values == {}  # nothing written yet
    assert study.trials[0].intermediate_values == {0: 0.0, 1: 1.0, 2: 2.0, 3: 3.0, 4: 4.0}
    study.tell(trial, 0.5)
    on_disk = optuna.load_study(study_name="b", storage=url).trials[0]
    assert on_disk.state == optuna.trial.TrialState.COMPLETE and on_disk.value == 0.5
    assert len(on_disk.intermediate_values) == 5 and "x" in on_disk.params


def test_a_rung_is_written_before_the_trial_goes_on_past_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=2, reduction_factor=3)
    study = optuna.create_study(storage=BufferedStorage(make_storage(url)), pruner=pruner)
    trial = study.ask()
    for step in (1, 2, 3):
        trial.report(0.1 * step, step)
        assert not trial.should_prune()  # the first trial at a rung is promoted
    on_disk = optuna.load_study(study_name=study.study_name, storage=url).trials[0]
    assert on_disk.system_attrs.get("completed_rung_0") == pytest.approx(0.2)
    assert on_disk.intermediate_values == {1: 0.1, 2: pytest.approx(0.2)}  # step 3: not yet


@pytest.mark.parametrize(
    ("config", "on_disk_at_once"), [(RunConfig(), {}), (RunConfig(live_writes=True), {1: 0.5})]
)
def test_a_plain_run_buffers_each_epoch_and_live_writes_store_it_at_once(
    tmp_path: Path, config: RunConfig, on_disk_at_once: dict[int, float]
) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    storage = trial_storage(make_storage(url), live_writes=config.live_writes)
    study = optuna.create_study(study_name="w", storage=storage)
    trial = study.ask()
    trial.report(0.5, 1)
    on_disk = optuna.load_study(study_name="w", storage=url).trials[0]
    assert on_disk.intermediate_values == on_disk_at_once
    study.tell(trial, 0.5)
    assert optuna.load_study(study_name="w", storage=url).trials[0].intermediate_values == {1: 0.5}
