"""A stop signal (Ctrl-C, SIGTERM) while trials run: in a trial it fails that trial; while
Optuna records one, it waits until the record is whole. Real signals, a real SQLite study."""

from __future__ import annotations

import signal
from collections.abc import Iterator, Sequence
from pathlib import Path

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

from carsearch import RunConfig
from carsearch.search import stop
from carsearch.search.trials import run_trials


class CtrlCInTell(optuna.samplers.RandomSampler):
    """Sends this process Ctrl-C from ``after_trial``, which Optuna calls inside ``tell``."""

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        super().after_trial(study, trial, state, values)
        if trial.number == 1:
            signal.raise_signal(signal.SIGINT)


@pytest.fixture
def ctrl_c_handled() -> Iterator[None]:
    """Ctrl-C handled as ``carsearch`` handles it, for this test only."""
    previous = signal.signal(signal.SIGINT, stop.interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        stop.forget()


def a_study(tmp_path: Path, sampler: optuna.samplers.BaseSampler) -> tuple[optuna.Study, str]:
    url = f"sqlite:///{tmp_path / 's.db'}"
    return optuna.create_study(study_name="s", storage=url, sampler=sampler), url


def test_ctrl_c_while_optuna_records_a_trial_stops_after_that_trial_is_stored(
    tmp_path: Path, ctrl_c_handled: None
) -> None:
    study, url = a_study(tmp_path, CtrlCInTell(seed=0))
    with pytest.raises(KeyboardInterrupt):  # Optuna 5 alone: UnboundLocalError
        run_trials(study, lambda t: t.suggest_float("x", 0, 1), RunConfig(n_trials=5, storage=url))
    trials = optuna.load_study(study_name="s", storage=url).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.COMPLETE]
    assert all(t.value == t.params["x"] for t in trials)


def test_ctrl_c_inside_a_trials_own_work_fails_that_trial_at_once(
    tmp_path: Path, ctrl_c_handled: None
) -> None:
    reached: list[str] = []

    def objective(trial: optuna.Trial) -> float:
        with stop.immediate():
            if trial.number == 1:
                signal.raise_signal(signal.SIGINT)
                reached.append("after the signal")
            return trial.suggest_float("x", 0, 1)

    study, url = a_study(tmp_path, optuna.samplers.RandomSampler(seed=0))
    with pytest.raises(KeyboardInterrupt):
        run_trials(study, objective, RunConfig(n_trials=5, storage=url))
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.FAIL]
    assert reached == []


def test_a_stop_noted_before_a_trial_starts_fails_it_before_any_work() -> None:
    stop.ask(signal.SIGTERM)
    try:
        with pytest.raises(KeyboardInterrupt), stop.deferred(), stop.immediate():
            pytest.fail("the trial's work ran after the stop")
    finally:
        stop.forget()
