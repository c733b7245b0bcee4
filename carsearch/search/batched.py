"""Batched asks: K trials asked at once, trained as one batched model where shapes group.

Each trial is stored as a lone one is: its own parameters, seed, per-epoch reports, pruning
and result (``study.tell``). Trials of one shape group (see
:func:`carsearch.training.batched.group_key`) of the ``mlp`` family train together; any other
trial (a group of one, another family) trains alone through the objective, as today. A pruned
member leaves its batch, which shrinks (its slot is not refilled until the next ask).

Not wired into ``carsearch run`` yet (no ``--batch`` option): the default path is unchanged.
With a TPE sampler, use ``constant_liar=True`` so that K asks do not sample alike.
"""

from __future__ import annotations

import logging
from collections import defaultdict

import optuna
from optuna.trial import TrialState

from carsearch.exceptions import TrainingError
from carsearch.search.objective import BEST_EPOCH_ATTR, FAIL_REASON_ATTR, Objective
from carsearch.search.space import suggest
from carsearch.storage.seam import flush_trial
from carsearch.training.batched import Member, fit_batched, group_key
from carsearch.training.device import derive_seed

logger = logging.getLogger("carsearch")

#: The model family that trains batched.
BATCHED_MODEL = "mlp"


def optimize_batched(
    study: optuna.Study, objective: Objective, *, n_trials: int, batch: int
) -> None:
    """Run ``n_trials`` trials of ``objective``'s search, ``batch`` asked at a time."""
    done = 0
    while done < n_trials:
        k = min(batch, n_trials - done)
        run_batch(study, objective, [study.ask() for _ in range(k)])
        done += k


def run_batch(study: optuna.Study, objective: Objective, trials: list[optuna.Trial]) -> None:
    """Sample, train and tell ``trials``: shape groups as one model, the rest alone."""
    config, schema = objective.config, objective.encoded.schema
    groups: dict[str, list[Member]] = defaultdict(list)
    alone: list[optuna.Trial] = []
    members: dict[int, optuna.Trial] = {}
    for trial in trials:
        recipe = suggest(trial, config, schema, len(objective.rows))
        if recipe.model != BATCHED_MODEL:
            alone.append(trial)
            continue
        seed = derive_seed(config.seed, trial.number)
        trial.set_user_attr("device", objective.label)
        trial.set_user_attr("seed", seed)
        flush_trial(trial)
        member = Member(recipe, seed, objective._reporter(trial, None))
        groups[group_key(recipe)].append(member)
        members[id(member)] = trial
    for group in groups.values():
        if len(group) == 1:
            alone.append(members[id(group[0])])
            continue
        _train_group(study, objective, group, members)
    for trial in alone:
        _run_alone(study, objective, trial)


def _train_group(
    study: optuna.Study,
    objective: Objective,
    group: list[Member],
    trials: dict[int, optuna.Trial],
) -> None:
    config = objective.config
    fit_batched(
        group,
        objective.encoded,
        objective.rows,
        objective.train,
        objective.val,
        device=objective.device,
        max_epochs=config.max_epochs,
        metric=config.metric,
        patience=config.patience,
    )
    for member in group:
        _tell(study, trials[id(member)], member, config.metric)


def _tell(study: optuna.Study, trial: optuna.Trial, member: Member, metric: str) -> None:
    """Store one member's outcome as the objective would have."""
    if isinstance(member.error, optuna.TrialPruned):
        study.tell(trial, state=TrialState.PRUNED)
        return
    if member.error is not None or member.result.best_scores is None:
        reason = str(member.error) if member.error else "no epoch was scored"
        trial.set_user_attr(FAIL_REASON_ATTR, reason)
        logger.warning("trial %d failed: %s", trial.number, reason)
        study.tell(trial, state=TrialState.FAIL)
        return
    trial.set_user_attr(BEST_EPOCH_ATTR, member.result.best_epoch)
    for key, value in member.result.best_scores.items():
        trial.set_user_attr(f"val_{key}", value)
    study.tell(trial, member.result.best_scores[metric])


def _run_alone(study: optuna.Study, objective: Objective, trial: optuna.Trial) -> None:
    """The lone path: the objective itself (its ``suggest`` replays the trial's params)."""
    try:
        value = objective(trial)
    except optuna.TrialPruned:
        study.tell(trial, state=TrialState.PRUNED)
    except TrainingError as error:
        logger.warning("trial %d failed: %s", trial.number, error)
        study.tell(trial, state=TrialState.FAIL)
    else:
        study.tell(trial, value)
