"""``carsearch run``: its options, grouped as ``--help`` shows them, and its handler."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from carsearch import plugins
from carsearch.cli.common import (
    DEFAULTS,
    add_decision_flag,
    add_ensemble_flag,
    add_json_flag,
    add_table_options,
    config_options,
    flags_of,
    named_by_flag,
    names,
    print_summary,
)
from carsearch.config import CLASS_WEIGHT_CHOICES, METRICS, PRUNERS, SPLITS, RunConfig
from carsearch.exceptions import ConfigError
from carsearch.summary import format_next_steps


def add_run(commands: Any) -> None:
    run = commands.add_parser("run", help="search, refit the best model, score it on test")
    _add_data_options(run.add_argument_group("data"))
    _add_search_options(run.add_argument_group("search"))
    _add_training_options(run.add_argument_group("training"))
    _add_output_options(run.add_argument_group("output"))
    run.set_defaults(handler=cmd_run, flags=flags_of(run))


def cmd_run(args: argparse.Namespace) -> int:
    import optuna

    from carsearch.api import run

    # Optuna logs each failed trial with its traceback; carsearch logs one line instead.
    optuna.logging.set_verbosity(optuna.logging.DEBUG if args.debug else optuna.logging.ERROR)
    try:
        config = RunConfig(**config_options(args, RunConfig))
    except ConfigError as error:
        raise ConfigError(named_by_flag(str(error), args.flags)) from None
    plugins.check_selection(config)  # an unknown or broken plugin fails before data is read
    result = run(config, progress=not args.json and sys.stderr.isatty(), refit=args.refit)
    print_summary(result.summary, as_json=args.json)
    if not args.json:
        print(format_next_steps(result.summary, tensorboard=config.tensorboard))
    return 0


def _add_data_options(group: Any) -> None:
    add_table_options(group)
    group.add_argument(
        "--min-category-count",
        type=int,
        default=DEFAULTS.min_category_count,
        metavar="N",
        help="categories with fewer training rows share one learned <unknown> code "
        f"(default {DEFAULTS.min_category_count})",
    )
    group.add_argument(
        "--class-weight",
        choices=CLASS_WEIGHT_CHOICES,
        default=DEFAULTS.class_weight,
        help="weigh classes by their rarity: none (default), balanced, or search both",
    )
    group.add_argument("--seed", type=int, default=DEFAULTS.seed)
    split = "stratified 64/16/20, or ordered (the textbook's first 80%% / last 20%%)"
    group.add_argument("--split", choices=SPLITS, default=DEFAULTS.split, help=split)


def _add_search_options(group: Any) -> None:
    group.add_argument(
        "--trials",
        dest="n_trials",
        type=int,
        default=DEFAULTS.n_trials,
        help=f"finished trials the study should hold in total (default {DEFAULTS.n_trials})",
    )
    group.add_argument("--storage", default=DEFAULTS.storage, help="an Optuna RDB storage URL")
    group.add_argument("--study", dest="study_name", help="study name (default: the data's name)")
    group.add_argument(
        "--model",
        default=DEFAULTS.model,
        help=f"the model plugin, or several (mlp,tabm) for one study over all of them "
        f"(default {DEFAULTS.model})",
    )
    _add_names(group, "--optimizers", DEFAULTS.optimizers, "optimizer families to search")
    _add_names(group, "--embedding-rules", DEFAULTS.embedding_rules, "embedding-size rules")
    _add_names(group, "--numeric-encoders", DEFAULTS.numeric_encoders, "numeric encodings")
    group.add_argument("--pruner", choices=PRUNERS, default=DEFAULTS.pruner)
    metric = "validation metric to optimise; auto (default): log_loss for classes, rmse for numbers"
    group.add_argument("--metric", choices=METRICS, default=DEFAULTS.metric, help=metric)
    group.add_argument("--timeout", type=float, help="stop starting trials after SECONDS")
    group.add_argument(
        "--time-limit",
        type=float,
        metavar="SECONDS",
        help="finish the whole run (search, refit and export) in about SECONDS",
    )
    group.add_argument(
        "--jobs",
        type=int,
        default=DEFAULTS.jobs,
        help="worker processes on this machine, sharing the cores and GPUs (default 1); "
        "--trials stays the study's total",
    )


def _add_training_options(group: Any) -> None:
    group.add_argument("--device", default=DEFAULTS.device, help="auto, cpu, cuda, cuda:N or mps")
    group.add_argument("--max-epochs", type=int, default=DEFAULTS.max_epochs)
    group.add_argument(
        "--patience", type=int, default=DEFAULTS.patience, help="early-stopping patience (epochs)"
    )
    group.add_argument(
        "--trial-timeout",
        type=float,
        metavar="SECONDS",
        help="fail a trial still training after SECONDS (checked each epoch); another replaces it",
    )
    group.add_argument(
        "--refit-seeds",
        type=int,
        default=DEFAULTS.refit_seeds,
        help="models averaged in the final refit (default: the model family's own, 5 for mlp "
        "and tabm)",
    )
    add_ensemble_flag(group, DEFAULTS.ensemble)
    add_decision_flag(group, DEFAULTS.decision)
    group.add_argument(
        "--threads", type=int, default=DEFAULTS.threads, help="torch CPU threads per process"
    )


def _add_output_options(group: Any) -> None:
    group.add_argument(
        "--out",
        metavar="DIR",
        help="the best model's bundle folder: new, empty or a bundle it replaces (default "
        "studies/carsearch/STUDY/best: next to the SQLite file, its name, the study's)",
    )
    group.add_argument(
        "--refit",
        action="store_true",
        help="refit and export the best trial even if the study's bundle is already of it",
    )
    group.add_argument(
        "--tensorboard",
        metavar="DIR",
        help="write each trial's loss and accuracy curves for TensorBoard to DIR/trial-NNNN "
        "(needs carsearch[tensorboard])",
    )
    group.add_argument(
        "--live-writes",
        action="store_true",
        help="store every epoch of a running trial at once, so optuna-dashboard follows it "
        "live (slower: a transaction per value instead of a few per trial)",
    )
    add_json_flag(group)


def _add_names(group: Any, flag: str, default: tuple[str, ...], what: str) -> None:
    group.add_argument(
        flag,
        type=names,
        default=default,
        metavar="A,B",
        help=f"{what} (default {','.join(default)})",
    )
