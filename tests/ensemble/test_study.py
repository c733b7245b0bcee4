"""The ensemble of a study: selected after the search, shown by run, best, --json, report."""

from __future__ import annotations

import json
import subprocess
import sys

import optuna

import carsearch
from carsearch import RunConfig
from carsearch.data.prepare import prepare
from carsearch.ensemble.study import ENSEMBLE_ATTR, select_ensemble
from carsearch.summary import format_summary


def test_run_selects_records_and_shows_the_ensemble(fast_config: RunConfig) -> None:
    config = fast_config.replace(n_trials=5, pruner="none")
    result = carsearch.run(config)
    ensemble = result.summary.ensemble
    assert ensemble is not None and ensemble["members"]
    assert sum(m["weight"] for m in ensemble["members"]) == 1.0
    assert ensemble["val_score"] <= ensemble["val_scores"][0]  # log loss: never worse
    assert "ensemble   trial" in format_summary(result.summary)
    best = subprocess.run(
        [sys.executable, "-m", "carsearch.cli", "best", "--storage", config.storage, "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(best.stdout)["ensemble"]["members"] == ensemble["members"]


def test_a_resumed_study_read_back_selects_what_the_run_selected(fast_config: RunConfig) -> None:
    n_first = len(carsearch.run(fast_config.replace(n_trials=3)).study.get_trials())
    resumed = carsearch.run(fast_config.replace(n_trials=6))
    in_process = resumed.study.get_trials()
    stored = optuna.load_study(study_name="tiny", storage=fast_config.storage)
    prepared = prepare(fast_config)
    from_storage = select_ensemble(stored.get_trials(), fast_config, prepared)
    assert from_storage == select_ensemble(in_process, fast_config, prepared)
    assert from_storage is not None
    assert stored.user_attrs[ENSEMBLE_ATTR]["members"] == from_storage.to_dict()["members"]
    assert len(stored.trials) > n_first  # the resume added trials


def test_ensemble_none_keeps_the_best_trial_alone(fast_config: RunConfig) -> None:
    result = carsearch.run(fast_config.replace(ensemble=None))
    assert result.summary.ensemble is None
    assert result.study.user_attrs[ENSEMBLE_ATTR] is None
