"""carsearch.run end to end on small data, stored in real SQLite files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

import carsearch
from carsearch import RunConfig, StudyError
from carsearch.data.prepare import prepare
from carsearch.search.study import CONFIG_ATTR, FINISHED
from helpers import SUMMARY_KEYS


def trial_record(study: optuna.Study) -> list[tuple]:
    return [(t.number, t.state, t.params, t.value) for t in study.get_trials()]


def test_run_searches_refits_and_summarises(fast_config: RunConfig) -> None:
    fast_config = fast_config.replace(max_epochs=20, patience=20)  # enough steps to learn
    result = carsearch.run(fast_config)
    summary = result.summary.to_dict()
    assert SUMMARY_KEYS <= summary.keys()
    assert summary["study"] == "tiny"
    assert summary["n_complete"] + summary["n_pruned"] == 3
    assert summary["device"] == "cpu"
    # The summary's scores are the bundle's model's, recomputed here on the test rows.
    prepared = prepare(fast_config)
    test_rows = prepared.table.frame.iloc[prepared.split.test]
    predicted = carsearch.load(summary["bundle"]).predict(test_rows)
    truth = test_rows[prepared.table.target].to_numpy()
    assert summary["test"]["accuracy"] == pytest.approx(float((predicted == truth).mean()))
    majority = test_rows[prepared.table.target].value_counts(normalize=True).max()
    assert summary["test"]["accuracy"] > majority  # it learned something beyond the prior
    assert len(result.refit.model.members) == fast_config.refit_seeds
    first = result.study.trials[0]
    assert first.user_attrs["origin"] == "textbook"
    assert first.params["n_units_l0"] == 200 and first.params["optimizer"] == "adam"
    assert first.user_attrs["device"] == "cpu"
    assert result.study.user_attrs[CONFIG_ATTR]["n_trials"] == 3


def test_same_seed_gives_the_same_trials(fast_config: RunConfig, tmp_path: Path) -> None:
    records = []
    for name in ("a", "b"):
        config = fast_config.replace(storage=f"sqlite:///{tmp_path / name}.db", n_trials=4)
        result = carsearch.run(config)
        records.append((trial_record(result.study), result.summary.test))
    assert records[0] == records[1]
    other = carsearch.run(
        fast_config.replace(storage=f"sqlite:///{tmp_path}/c.db", n_trials=4, seed=1)
    )
    assert trial_record(other.study) != records[0][0]


def test_a_second_run_resumes_and_adds_trials(fast_config: RunConfig) -> None:
    first = carsearch.run(fast_config)
    before = trial_record(first.study)
    second = carsearch.run(fast_config.replace(n_trials=5))
    after = trial_record(second.study)
    assert after[: len(before)] == before
    assert len(second.study.get_trials(states=FINISHED)) == 5
    params = [tuple(sorted(t.params.items())) for t in second.study.trials]
    assert len(set(params)) == len(params), "a resumed run must not replay the same samples"
    third = carsearch.run(fast_config.replace(n_trials=5))
    assert trial_record(third.study) == after


def test_resuming_with_other_settings_is_refused(fast_config: RunConfig) -> None:
    carsearch.run(fast_config)
    with pytest.raises(StudyError, match=r"metric='log_loss'.*metric='accuracy'.*--study"):
        carsearch.run(fast_config.replace(metric="accuracy"))


def test_other_data_under_the_same_study_is_refused(fast_config: RunConfig, tmp_path: Path) -> None:
    carsearch.run(fast_config)
    changed = tmp_path / "changed.csv"
    assert fast_config.data is not None
    text = Path(fast_config.data).read_text()
    changed.write_text(text.replace("red", "pink"))
    with pytest.raises(StudyError, match="other data"):
        carsearch.run(fast_config.replace(data=str(changed), study_name="tiny"))


@pytest.mark.parametrize("metric", ["accuracy", "macro_f1"])
def test_other_metrics_are_maximised(fast_config: RunConfig, metric: str) -> None:
    result = carsearch.run(fast_config.replace(metric=metric, pruner="none"))
    assert result.study.direction == optuna.study.StudyDirection.MAXIMIZE
    best = result.study.best_trial
    assert best.value == best.user_attrs[f"val_{metric}"]
    assert {"val_accuracy", "val_macro_f1", "val_log_loss"} <= best.user_attrs.keys()


QUIET_RUN = """
import sys
import optuna
import carsearch
from helpers import tiny_config
from pathlib import Path
carsearch.run(tiny_config(Path(sys.argv[1]), n_trials=3, refit_seeds=1))
print(optuna.logging.get_verbosity())
"""


def test_the_api_is_as_quiet_as_a_library(tmp_path: Path) -> None:
    """No Optuna line per trial (nor a progress bar) on a stderr that is no terminal, and
    Optuna's verbosity restored after the call."""
    tests = Path(__file__).parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests.parent), str(tests)])}
    done = subprocess.run(
        [sys.executable, "-c", QUIET_RUN, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "Trial 0 finished" not in done.stderr and "A new study created" not in done.stderr
    assert "%|" not in done.stderr, "no progress bar off a terminal"
    assert done.stdout.split() == [str(optuna.logging.INFO)]


def test_the_progress_bar_names_the_metric(
    fast_config: RunConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    carsearch.run(fast_config.replace(n_trials=2, refit_seeds=1), progress=True)
    err = capsys.readouterr().err
    assert "best log_loss: " in err and "2/2" in err, err
