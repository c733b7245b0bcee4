"""`carsearch run --tensorboard DIR`: one run folder, and so one curve per tag, per trial."""

from __future__ import annotations

import sys
from pathlib import Path

import optuna
import pytest

from carsearch import RunConfig
from carsearch.cli import main
from carsearch.exceptions import ConfigError
from carsearch.training.tensorboard import LOSS_TAG, summary_writer_type, trial_folder

TAGS = [LOSS_TAG] + [
    f"{metric}/{split}"
    for metric in ("log_loss", "accuracy", "macro_f1")
    for split in ("train", "validation")
]

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")

TINY_RUN = ["--max-epochs", "3", "--patience", "2", "--refit-seeds", "1", "--device", "cpu"]


def read_curves(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Each scalar tag's (epoch, value) points in a run folder's event files."""
    events = event_accumulator.EventAccumulator(str(folder))
    events.Reload()
    return {
        tag: [(event.step, event.value) for event in events.Scalars(tag)]
        for tag in events.Tags()["scalars"]
    }


def test_one_curve_per_trial(
    fast_config: RunConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logdir = tmp_path / "curves"
    run = ["run", "--data", str(fast_config.data), "--trials", "4"]
    storage = ["--storage", fast_config.storage, "--tensorboard", str(logdir)]
    assert main([*run, *storage, *TINY_RUN]) == 0
    assert f"tensorboard --logdir {logdir}" in capsys.readouterr().out

    trials = optuna.load_study(study_name="tiny", storage=fast_config.storage).get_trials()
    assert sorted(logdir.iterdir()) == [trial_folder(logdir, t.number) for t in trials]
    for trial in trials:
        curves = read_curves(trial_folder(logdir, trial.number))
        assert sorted(curves) == sorted(TAGS)
        epochs = sorted(trial.intermediate_values)
        for points in curves.values():
            assert [step for step, _ in points] == epochs
        # The validation loss is what the trial reported to the pruner (log_loss metric).
        reported = [trial.intermediate_values[epoch] for epoch in epochs]
        logged = [value for _, value in curves["log_loss/validation"]]
        assert logged == pytest.approx(reported, rel=1e-6)
        assert all(0 <= value <= 1 for _, value in curves["accuracy/train"])


def test_curves_do_not_change_the_search(fast_config: RunConfig, tmp_path: Path) -> None:
    from carsearch.api import run

    plain = run(fast_config.replace(n_trials=2, refit_seeds=1)).study
    logged = run(
        fast_config.replace(
            n_trials=2,
            refit_seeds=1,
            storage=f"sqlite:///{tmp_path / 'logged.db'}",
            tensorboard=str(tmp_path / "curves"),
        )
    ).study
    assert [t.values for t in logged.trials] == [t.values for t in plain.trials]


def test_missing_tensorboard_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, fast_config: RunConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    # An uninstalled package cannot be had here: block its import instead.
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(ConfigError, match=r"carsearch\[tensorboard\]"):
        summary_writer_type()
    run = ["run", "--data", str(fast_config.data), "--storage", fast_config.storage]
    assert main([*run, "--tensorboard", "curves", *TINY_RUN]) == 1
    assert "pip install 'carsearch[tensorboard]'" in capsys.readouterr().err
