"""A whole run's time limit (``--time-limit``): search, refit and export in one budget.

``--timeout`` only stops starting trials; a :class:`TimeBudget` also keeps time for what
follows the search. The search ends when what is left would only cover the refit and
export of its best trial, estimated from that trial's own training time (per epoch, times
its best epoch, the refit's extra rows and the refit members) plus :data:`EXPORT_SECONDS`;
a trial still training then stops after its current epoch, keeping its best epoch as early
stopping does. The refit trains fewer members (at least one) when they would not fit, and
its members stop at the deadline too.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import optuna
from optuna.trial import FrozenTrial, TrialState

from carsearch import plugins
from carsearch.config import RunConfig
from carsearch.data.prepare import Prepared

logger = logging.getLogger("carsearch")

#: Seconds kept for the export (TorchScript and ONNX files with their parity checks): a few
#: seconds for the built-in models on the dev tables.
EXPORT_SECONDS = 5.0
#: The share of the limit kept from the search before any trial has completed, and at most
#: after: a refit estimated to need more trains fewer members instead.
MAX_RESERVE_SHARE = 0.5


@dataclass
class TimeBudget:
    """The limit of one run, from ``started`` (``time.monotonic()``).

    Example:
        >>> budget = TimeBudget(60.0, n_train=800, n_refit=1000, started=0.0)
        >>> budget.deadline
        60.0
    """

    limit: float
    n_train: int
    n_refit: int
    started: float = field(default_factory=time.monotonic)

    @property
    def deadline(self) -> float:
        """When the whole run should be done (``time.monotonic()``)."""
        return self.started + self.limit

    @property
    def refit_deadline(self) -> float:
        """When the refit should be done: the export's time is kept after it."""
        return self.deadline - EXPORT_SECONDS

    def reserve(self, study: optuna.Study, config: RunConfig) -> float:
        """Seconds the refit and export of ``study``'s best trial are estimated to take."""
        cap = MAX_RESERVE_SHARE * self.limit
        best = _best(study)
        if best is None or best.duration is None or not best.intermediate_values:
            return cap
        per_epoch = best.duration.total_seconds() / max(best.intermediate_values)
        epochs = int(best.user_attrs.get("best_epoch", max(best.intermediate_values)))
        model = str(best.params.get("model", config.models[0]))
        members = config.refit_seeds or plugins.instance("models", model).refit_members
        refit = per_epoch * epochs * members * self.n_refit / max(self.n_train, 1)
        return min(cap, refit + EXPORT_SECONDS)

    def search_deadline(self, study: optuna.Study, config: RunConfig) -> float:
        """When the search should end: the deadline less :meth:`reserve`."""
        return self.deadline - self.reserve(study, config)

    def stopper(self, config: RunConfig) -> SearchStopper:
        """The ``study.optimize`` callback that ends the search at its deadline."""
        return SearchStopper(self, config)


@dataclass
class SearchStopper:
    """Stops the study once the search deadline has passed (checked after each trial);
    ``ended`` then says so to the trial loop, which would otherwise start it again."""

    budget: TimeBudget
    config: RunConfig
    ended: bool = False

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if time.monotonic() >= self.budget.search_deadline(study, self.config):
            logger.info("time limit: search ends, the rest is kept for the refit and export")
            self.ended = True
            study.stop()

    def done(self) -> bool:
        """Whether the search has ended at its deadline."""
        return self.ended


def _best(study: optuna.Study) -> FrozenTrial | None:
    """The best complete trial, or None before one has completed."""
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return None
    return study.best_trial


def time_budget(config: RunConfig, prepared: Prepared, started: float) -> TimeBudget | None:
    """The budget of a run with ``config.time_limit``, counted from ``started``; else None."""
    if config.time_limit is None:
        return None
    n_train, n_refit = len(prepared.split.train), len(prepared.refit_rows)
    return TimeBudget(config.time_limit, n_train=n_train, n_refit=n_refit, started=started)
