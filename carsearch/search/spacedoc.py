"""The search space as a Markdown table, read from the code (``docs/search-space.md``).

The space is define-by-run, so it is read the way Optuna reads it: :func:`suggest` runs on
many randomly sampled trials and every distribution it asks for is recorded, with the plugin
that asked. ``python -m carsearch.search.spacedoc > docs/search-space.md`` rewrites the page;
a test fails when the page and the code disagree.
"""

from __future__ import annotations

import sys
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from carsearch import plugins
from carsearch.config import RunConfig
from carsearch.data.schema import Column, Schema
from carsearch.models.base import SearchContext
from carsearch.search.space import suggest

#: Random trials sampled: enough to reach every branch of the built-in space many times.
N_SAMPLES = 400
#: The table the page describes: Car Evaluation's training rows (ranges that grow with the
#: rows, such as the MLP's widest layer, are shown at that size).
CONTEXT = SearchContext(1106, n_categorical=6, n_numeric=0, task="classification")
_KINDS = ("embedding_rules", "models", "optimizers")


#: The run the page describes: the default one, with every built-in model family.
PAGE_CONFIG = RunConfig(model="mlp,tabm")


def space_table(config: RunConfig | None = None) -> str:
    """The Markdown page of ``config``'s search space (default: :data:`PAGE_CONFIG`)."""
    config = config or PAGE_CONFIG
    found = sample_distributions(config)
    owners = _owners(config)
    lines = [
        "# The search space",
        "",
        "Generated from the code by `python -m carsearch.search.spacedoc`; do not edit by hand.",
        "Each trial samples the shared parameters, then those of the embedding rule, model and",
        "optimizer family it chose (a parameter of another family is not sampled). `model` is",
        "searched with `--model mlp,tabm`; `--model mlp` (the default) or `--model tabm` samples",
        "that family's parameters alone (`embedding_dropout` belongs to both). Shown for a",
        "table of categorical columns with Car Evaluation's 1,106 training rows: a table with",
        "numeric columns also searches `numeric_encoding` (`standard`, `quantile`, `ple`,",
        "`periodic`, each with its own parameters), and batch sizes grow with the training rows",
        "(`carsearch.search.space.batch_sizes`). With numeric columns `n_layers` starts at 0, a",
        "linear model of the inputs (no hidden layer, so no `dropout` or `batch_norm`), and",
        "`standard`'s `standard_clip` may turn its clipping off, so it stays linear in them.",
        "",
        "| parameter | of | type | values | scale |",
        "|---|---|---|---|---|",
    ]
    for name in sorted(found, key=lambda n: (_order(owners.get(n, "shared")), n)):
        kind, values, scale = describe(found[name])
        lines.append(f"| `{name}` | {owners.get(name, 'shared')} | {kind} | {values} | {scale} |")
    return "\n".join(lines) + "\n"


def sample_distributions(config: RunConfig) -> dict[str, BaseDistribution]:
    """Every parameter the space suggests over :data:`N_SAMPLES` random trials."""
    schema = Schema((Column("a", ("x", "y", "z")),), "t", ("no", "yes"))
    sampler = optuna.samplers.RandomSampler(seed=0)
    study = optuna.create_study(sampler=sampler)
    found: dict[str, BaseDistribution] = {}
    for _ in range(N_SAMPLES):
        trial = study.ask()
        suggest(trial, config, schema, n_train=CONTEXT.n_train)
        found.update(trial.distributions)
        study.tell(trial, 0.0)
    return found


def describe(distribution: BaseDistribution) -> tuple[str, str, str]:
    """Type, values and scale of one distribution, as the table shows them."""
    if isinstance(distribution, CategoricalDistribution):
        return "choice", " / ".join(f"`{choice}`" for choice in distribution.choices), ""
    if isinstance(distribution, (IntDistribution, FloatDistribution)):
        kind = "int" if isinstance(distribution, IntDistribution) else "float"
        scale = "log" if distribution.log else "linear"
        return kind, f"{distribution.low:g} - {distribution.high:g}", scale
    return type(distribution).__name__, "", ""


def _owners(config: RunConfig) -> dict[str, str]:
    """Each plugin parameter's plugins, as ``kind name`` (e.g. ``optimizer `adam```)."""
    chosen = plugins.selected(config)
    found: dict[str, tuple[str, list[str]]] = {}
    for kind in _KINDS:
        for name in chosen[kind]:
            for param in _params_of(kind, name):
                names = found.setdefault(param, (kind, []))[1]
                if name not in names:
                    names.append(name)
    return {
        param: f"{_NOUNS[kind]} " + ", ".join(f"`{name}`" for name in names)
        for param, (kind, names) in found.items()
    }


def _params_of(kind: str, name: str) -> set[str]:
    plugin = plugins.instance(kind, name)
    space = (
        (lambda trial: plugin.search_space(trial, CONTEXT))
        if kind == "models"
        else plugin.search_space
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    params: set[str] = set()
    for _ in range(N_SAMPLES // 4):
        trial = study.ask()
        space(trial)
        params.update(trial.params)
        study.tell(trial, 0.0)
    return params


_NOUNS = {"embedding_rules": "rule", "models": "model", "optimizers": "optimizer"}


def _order(owner: str) -> int:
    for rank, noun in enumerate(("shared", "rule", "model", "optimizer")):
        if owner.startswith(noun):
            return rank
    return len(_NOUNS) + 1


def main(argv: Any = None) -> int:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sys.stdout.write(space_table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
