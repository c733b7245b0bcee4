"""The trial loop every process runs, until the study holds its trials.

``n_trials`` counts the study's finished trials, across every worker on every machine. Each
process runs :func:`run_trials`, which stops when the study holds them; the storage's trial
budget (:class:`carsearch.storage.rdb.CarsearchStorage`) refuses, in the transaction that would
start it, a trial beyond them, so racing workers cannot overshoot. A failed trial (a NaN
loss, ``--trial-timeout``, out of memory, a dead worker's) frees its place for another.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from carsearch.config import RunConfig
from carsearch.exceptions import StudyError, TrainingError
from carsearch.search import stop
from carsearch.search.objective import FAIL_REASON_ATTR
from carsearch.search.study import FINISHED
from carsearch.storage.faults import storage_faults
from carsearch.storage.rdb import BudgetReached
from carsearch.storage.seam import Storage
from carsearch.storage.urls import is_server

logger = logging.getLogger("carsearch")

Objective = Callable[[optuna.Trial], float]
Callback = Callable[[optuna.Study, FrozenTrial], None]

#: A process starts no more trials after this many failed in a row: something is wrong.
MAX_FAILURES_IN_A_ROW = 5
#: Seconds between looks at a study whose last trials run elsewhere.
POLL_SECONDS = 2.0


def n_finished(study: optuna.Study) -> int:
    """The study's complete and pruned trials, whoever ran them."""
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def run_trials(
    study: optuna.Study,
    objective: Objective,
    config: RunConfig,
    *,
    progress: bool = False,
    callbacks: Sequence[Callback] = (),
    ended: Callable[[], bool] | None = None,
) -> None:
    """Run trials until the study holds ``config.n_trials`` finished ones (or time is up).

    ``callbacks`` see each trial of this process once it ends; one that stops the study
    ends the search for good when ``ended()`` says so (``--time-limit``). When the last
    trials run in other processes, waits for them: one may fail, or belong to a dead worker
    (failed by its stale heartbeat, then retried), and need a stand-in.

    Raises:
        StudyError: ``MAX_FAILURES_IN_A_ROW`` trials failed in a row and none ever completed.
        StorageError: the storage failed (a full disk, a lost server); this process's
            running trial is failed if the storage still allows it.
    """
    if is_server(config.storage):
        study.sampler.reseed_rng()  # other machines may share the seed: sample apart
    stopper = _Stopper(config.n_trials)
    owner = Storage.of(study)
    fail_mine = owner.fail_running if owner is not None else _nothing
    try:
        # A stop signal raises in a trial, or between two, never while Optuna records one.
        with storage_faults(config.storage, on_fault=fail_mine), stop.deferred():
            _run_until_done(study, objective, config, stopper, progress, callbacks, ended)
    except KeyboardInterrupt:
        # Optuna fails the trial of an objective it interrupts, not one that its own ask()
        # or tell() was in: that one would wait for its heartbeat to go stale.
        fail_mine()
        raise
    if stopper.gave_up and not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        raise StudyError(
            f"no trial completed: {MAX_FAILURES_IN_A_ROW} failed in a row, the last because "
            f"{stopper.last_reason}"
        )


def _nothing() -> None:
    """What a study on a storage carsearch did not open fails: nothing (Optuna did)."""


def _run_until_done(
    study: optuna.Study,
    objective: Objective,
    config: RunConfig,
    stopper: _Stopper,
    progress: bool,
    callbacks: Sequence[Callback],
    ended: Callable[[], bool] | None = None,
) -> None:
    deadline = None if config.timeout is None else time.monotonic() + config.timeout
    while not stopper.gave_up and (missing := config.n_trials - n_finished(study)) > 0:
        stop.raise_if_asked()
        left = None if deadline is None else deadline - time.monotonic()
        if (left is not None and left <= 0) or (ended is not None and ended()):
            return
        try:
            study.optimize(
                objective,
                n_trials=missing,
                timeout=left,
                catch=(TrainingError,),
                callbacks=[*callbacks, stopper],
                show_progress_bar=progress,
            )
        except BudgetReached as full:
            if not full.heartbeat:
                return  # without heartbeats a dead worker's trial would be waited for forever
            time.sleep(POLL_SECONDS)
        except optuna.exceptions.UpdateFinishedTrialError as error:
            logger.warning("a trial here was failed elsewhere (a late heartbeat?): %s", error)
        progress = False


class _Stopper:
    """The ``study.optimize`` callback that ends this process's trials.

    Stops when the study holds its finished trials, or after too many failures in a row.
    """

    def __init__(self, n_trials: int) -> None:
        self.n_trials = n_trials
        self.failures_in_a_row = 0
        self.last_reason: str | None = None
        self.gave_up = False

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        stop.raise_if_asked()  # a stop that came while Optuna recorded this trial
        if trial.state == TrialState.FAIL:
            self.failures_in_a_row += 1
            self.last_reason = trial.user_attrs.get(FAIL_REASON_ATTR, "an unknown error")
        else:
            self.failures_in_a_row = 0
        if self.failures_in_a_row >= MAX_FAILURES_IN_A_ROW:
            self.gave_up = True
            logger.warning(
                "%d trials failed in a row, the last because %s; starting no more here",
                self.failures_in_a_row,
                self.last_reason,
            )
            study.stop()
        elif n_finished(study) >= self.n_trials:
            study.stop()


def log_failure(study: optuna.Study, trial: FrozenTrial) -> None:
    """One warning line per failed trial, with the reason the objective recorded."""
    if trial.state == TrialState.FAIL:
        reason = trial.user_attrs.get(FAIL_REASON_ATTR, "see --debug for the traceback")
        logger.warning("trial %d failed: %s", trial.number, reason)
