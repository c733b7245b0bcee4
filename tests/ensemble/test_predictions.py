"""carsearch.ensemble.predictions: each trial's validation predictions, kept in the study."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest

import carsearch
from carsearch import RunConfig
from carsearch.data.prepare import prepare
from carsearch.ensemble.predictions import ATTR, MAX_VALUES, decode, encode, kept_rows
from carsearch.ensemble.select import score
from carsearch.exceptions import StudyError
from helpers import tiny_config


def test_encode_decode_is_exact_float32() -> None:
    values = np.random.default_rng(0).random((277, 4)).astype(np.float32)
    back = decode(encode(values))
    assert back.dtype == np.float32 and back.shape == (277, 4)
    assert np.array_equal(back, values)
    assert np.array_equal(decode(encode(values[:, 0])), values[:, 0])


def test_damaged_predictions_are_one_error() -> None:
    value = encode(np.ones(3, dtype=np.float32))
    with pytest.raises(StudyError, match="damaged"):
        decode({**value, "f4": value["f4"][:-4] + "AAAA"})
    with pytest.raises(StudyError, match="damaged"):
        decode({"shape": [5]})


def test_kept_rows_all_when_small_else_a_fixed_bounded_subset() -> None:
    assert np.array_equal(kept_rows(277, 4, seed=0), np.arange(277))
    subset = kept_rows(10_000, 4, seed=3)
    assert len(subset) * 4 <= MAX_VALUES and len(subset) == MAX_VALUES // 4
    assert np.all(np.diff(subset) > 0) and subset[-1] < 10_000
    assert np.array_equal(subset, kept_rows(10_000, 4, seed=3))  # every worker keeps the same
    assert not np.array_equal(subset, kept_rows(10_000, 4, seed=4))


def test_every_finished_trial_of_a_two_worker_run_keeps_its_best_epoch_predictions(
    fast_config: RunConfig,
) -> None:
    config = fast_config.replace(jobs=2, n_trials=4, max_epochs=4, pruner="none")
    carsearch.run(config)
    prepared = prepare(config)
    y = prepared.search.y[prepared.split.val]
    study = optuna.load_study(study_name="tiny", storage=config.storage)
    finished = [t for t in study.trials if t.state.is_finished() and t.state.name != "FAIL"]
    assert len(finished) >= 4
    for trial in finished:
        predictions = decode(trial.user_attrs[ATTR])
        assert predictions.shape == (len(y), 3)
        assert np.allclose(predictions.sum(axis=1), 1.0, atol=1e-5)
        # the stored rows are the best epoch's: they score the trial's value
        assert score(predictions, y, "log_loss") == pytest.approx(trial.value, rel=1e-5)


def test_a_pruned_trial_keeps_its_last_epoch_predictions(tmp_path: Path) -> None:
    config = tiny_config(tmp_path, n_trials=8, max_epochs=6, patience=6, pruner="median")
    carsearch.run(config)
    study = optuna.load_study(study_name="tiny", storage=config.storage)
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    if not pruned:
        pytest.skip("no trial was pruned in this run")
    prepared = prepare(config)
    y = prepared.search.y[prepared.split.val]
    for trial in pruned:
        last = trial.intermediate_values[max(trial.intermediate_values)]
        assert score(decode(trial.user_attrs[ATTR]), y, "log_loss") == pytest.approx(last, rel=1e-5)
