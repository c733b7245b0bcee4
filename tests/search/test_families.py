"""Several model families in one study: turns, and pruning among a trial's own family."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import optuna
from optuna.distributions import CategoricalDistribution

from carsearch import plugins
from carsearch.data.prepare import prepare
from carsearch.search.families import FamilyTurns, SameFamilyPruner
from carsearch.search.space import search_context, suggest
from carsearch.search.study import make_pruner, make_sampler, open_study
from helpers import tiny_config

FAMILIES = CategoricalDistribution(["a", "b"])


def test_each_family_gets_its_turn_and_tpe_samples_the_rest(tmp_path: Path) -> None:
    config = tiny_config(tmp_path, model="mlp,lightgbm")
    prepared = prepare(config)
    sampler = make_sampler(config, n_existing=0)
    assert isinstance(sampler, FamilyTurns)
    study = optuna.create_study(sampler=sampler)
    for number in range(30):
        trial = study.ask()
        recipe = suggest(trial, config, prepared.search.schema, len(prepared.split.train))
        # Whatever scores best, the families alternate: mlp first, as the run names it.
        study.tell(trial, 0.1 if recipe.model == "lightgbm" else 1.0)
        assert recipe.model == ("mlp", "lightgbm")[number % 2]
    assert Counter(t.params["model"] for t in study.trials) == {"mlp": 15, "lightgbm": 15}


def a_trial(study: optuna.Study, family: str, values: list[float]) -> bool:
    """A trial of ``family`` that reports ``values`` at epochs 1, 2, ... as carsearch's
    does, asking after each whether to prune; whether it was, at the end."""
    study.enqueue_trial({"model": family})
    trial = study.ask({"model": FAMILIES})
    for epoch, value in enumerate(values, start=1):
        trial.report(value, epoch)
        if trial.should_prune():
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            return True
    study.tell(trial, values[-1])
    return False


def test_a_trial_is_pruned_only_against_its_own_family(tmp_path: Path) -> None:
    config = tiny_config(tmp_path, model="a,b")
    pruner = make_pruner(config)
    assert isinstance(pruner, SameFamilyPruner)
    studies = {
        "same family": optuna.create_study(pruner=pruner),
        "plain": optuna.create_study(pruner=optuna.pruners.SuccessiveHalvingPruner(2, 3)),
    }
    for study in studies.values():
        for loss in (0.10, 0.11, 0.12):  # family a learns fast
            a_trial(study, "a", [loss, loss])
        for loss in (0.60, 0.70):  # family b slowly
            a_trial(study, "b", [loss, loss])
    # The best b so far, at its first rung: worse than every a, better than every b.
    pruned = {name: a_trial(study, "b", [0.5, 0.5]) for name, study in studies.items()}
    assert pruned == {"same family": False, "plain": True}


def test_a_new_study_tries_the_textbook_then_each_familys_defaults_first(
    tmp_path: Path,
) -> None:
    config = tiny_config(tmp_path, model="mlp,lightgbm")
    prepared = prepare(config)
    context = search_context(prepared.search.schema, len(prepared.split.train))
    storage = optuna.storages.RDBStorage(config.storage)
    study = open_study(config, storage=storage, name="s", table=prepared.table, context=context)
    queued = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert [t.user_attrs["origin"] for t in queued] == ["textbook", "lightgbm defaults"]
    # Resumed, or opened by a second machine: nothing is queued twice.
    open_study(config, storage=storage, name="s", table=prepared.table, context=context)
    assert len(study.get_trials(states=(optuna.trial.TrialState.WAITING,))) == 2
    schema, n_train = prepared.search.schema, len(prepared.split.train)
    first, second = (suggest(study.ask(), config, schema, n_train) for _ in "12")
    assert (first.model, first.params["n_units_l0"]) == ("mlp", 200)
    defaults = plugins.instance("models", "lightgbm").first_params(context)
    assert second.model == "lightgbm"
    assert {name: second.params[name] for name in defaults} == defaults
