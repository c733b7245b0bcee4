"""The ``carsearch`` command: a thin shell over the library.

Library errors become one ``error: ...`` line on stderr and exit status 1 (2 for bad usage,
130 for Ctrl-C); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from carsearch import plugins
from carsearch.config import METRICS, PRUNERS, SPLITS, RunConfig
from carsearch.exceptions import CarsearchError
from carsearch.summary import Summary, format_next_steps, format_summary

Handler = Callable[[argparse.Namespace], int]
#: The run options' defaults come from RunConfig alone, so the CLI and the API agree.
DEFAULTS = RunConfig()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(debug=args.debug)
    try:
        status: int = args.handler(args)
        return status
    except KeyboardInterrupt:
        print("interrupted: finished trials are stored; run again to continue", file=sys.stderr)
        return 130
    except (CarsearchError, OSError) as error:
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 1


def _configure_logging(*, debug: bool) -> None:
    """carsearch's own progress lines at INFO; other libraries only when they warn."""
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING, format="%(name)s: %(message)s"
    )
    logging.getLogger("carsearch").setLevel(logging.DEBUG if debug else logging.INFO)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="carsearch", description="Optuna search over embedding MLPs for tables."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_run(commands)
    _add_export(commands)
    _add_predict(commands)
    _add_best(commands)
    _add_dashboard(commands)
    _add_report(commands)
    _add_plugins(commands)
    return parser


def _add_run(commands: Any) -> None:
    run = commands.add_parser("run", help="search, refit the best model, score it on test")
    run.add_argument(
        "--trials",
        dest="n_trials",
        type=int,
        default=DEFAULTS.n_trials,
        help=f"finished trials the study should hold in total (default {DEFAULTS.n_trials})",
    )
    run.add_argument("--data", help="a CSV or TSV of categorical columns (default: Car Evaluation)")
    run.add_argument("--target", help="the target column of --data (default: the last)")
    _add_plugin_options(run)
    run.add_argument("--seed", type=int, default=DEFAULTS.seed)
    run.add_argument(
        "--split",
        choices=SPLITS,
        default=DEFAULTS.split,
        help="stratified 64/16/20, or ordered (the textbook's first 80%% / last 20%%)",
    )
    run.add_argument("--storage", default=DEFAULTS.storage, help="an Optuna RDB storage URL")
    run.add_argument("--study", dest="study_name", help="study name (default: the data's name)")
    run.add_argument("--pruner", choices=PRUNERS, default=DEFAULTS.pruner)
    run.add_argument(
        "--metric",
        choices=METRICS,
        default=DEFAULTS.metric,
        help="validation metric to optimise (default log_loss, see README)",
    )
    run.add_argument("--timeout", type=float, help="stop starting trials after SECONDS")
    run.add_argument(
        "--trial-timeout",
        type=float,
        metavar="SECONDS",
        help="fail a trial still training after SECONDS (checked each epoch); another replaces it",
    )
    run.add_argument(
        "--jobs",
        type=int,
        default=DEFAULTS.jobs,
        help="worker processes on this machine, sharing the cores and GPUs (default 1); "
        "--trials stays the study's total",
    )
    run.add_argument("--device", default=DEFAULTS.device, help="auto, cpu, cuda, cuda:N or mps")
    run.add_argument("--max-epochs", type=int, default=DEFAULTS.max_epochs)
    run.add_argument(
        "--patience", type=int, default=DEFAULTS.patience, help="early-stopping patience (epochs)"
    )
    run.add_argument(
        "--refit-seeds",
        type=int,
        default=DEFAULTS.refit_seeds,
        help="models averaged in the final refit (default 5)",
    )
    run.add_argument(
        "--threads", type=int, default=DEFAULTS.threads, help="torch CPU threads per process"
    )
    run.add_argument(
        "--out", metavar="DIR", help="the best model's bundle folder (default STUDIES/STUDY/best)"
    )
    run.add_argument(
        "--tensorboard",
        metavar="DIR",
        help="write each trial's loss and accuracy curves for TensorBoard to DIR/trial-NNNN "
        "(needs carsearch[tensorboard])",
    )
    run.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    run.set_defaults(handler=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    import optuna

    from carsearch.api import run

    # Optuna logs each failed trial with its traceback; carsearch logs one line instead.
    optuna.logging.set_verbosity(optuna.logging.DEBUG if args.debug else optuna.logging.ERROR)
    config = RunConfig(**_config_options(args, RunConfig))
    plugins.check_selection(config)  # an unknown or broken plugin fails before data is read
    result = run(config, progress=not args.json and sys.stderr.isatty())
    _print_summary(result.summary, as_json=args.json)
    if not args.json:
        print(format_next_steps(result.summary, tensorboard=config.tensorboard))
    return 0


def _print_summary(summary: Summary, *, as_json: bool) -> None:
    print(json.dumps(summary.to_dict()) if as_json else format_summary(summary))


def _add_dashboard(commands: Any) -> None:
    dashboard = commands.add_parser("dashboard", help="serve optuna-dashboard on the studies")
    dashboard.add_argument("--storage", default=DEFAULTS.storage, help="the study storage URL")
    dashboard.add_argument(
        "--host", default="127.0.0.1", help="interface to listen on (default: this machine only)"
    )
    dashboard.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    dashboard.set_defaults(handler=cmd_dashboard)


def cmd_dashboard(args: argparse.Namespace) -> int:
    from carsearch.inspect.dashboard import dashboard_url, open_dashboard, serve_until_interrupted

    server = open_dashboard(args.storage, host=args.host, port=args.port)
    print(f"optuna-dashboard on {args.storage}: open {dashboard_url(server)}", flush=True)
    print("Ctrl-C stops it", flush=True)
    serve_until_interrupted(server)
    return 0


def _add_report(commands: Any) -> None:
    report = commands.add_parser("report", help="write a study's report as one HTML file")
    report.add_argument("--study", help="the study (default: the storage's only study)")
    report.add_argument("--storage", default=DEFAULTS.storage, help="the study storage URL")
    report.add_argument("--out", help="the HTML file (default: STUDY-report.html)")
    report.set_defaults(handler=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from carsearch.inspect.report import write_report
    from carsearch.search.study import open_existing

    study = open_existing(args.study, args.storage)
    path = write_report(study, args.out or f"{study.study_name}-report.html")
    print(f"report of study {study.study_name!r} written to {path}")
    return 0


def _config_options(args: argparse.Namespace, config_type: type) -> dict[str, Any]:
    """The parsed options that are fields of ``config_type``."""
    fields = {field.name for field in dataclasses.fields(config_type)}
    return {key: value for key, value in vars(args).items() if key in fields}


def _add_plugin_options(run: Any) -> None:
    """``--model``, ``--optimizers``, ``--embedding-rules`` and ``--dataset``: plugin names."""
    run.add_argument(
        "--dataset",
        default=DEFAULTS.dataset,
        help=f"a data-set plugin's name, used without --data (default {DEFAULTS.dataset})",
    )
    run.add_argument(
        "--model", default=DEFAULTS.model, help=f"the model plugin (default {DEFAULTS.model})"
    )
    run.add_argument(
        "--optimizers",
        type=_names,
        default=DEFAULTS.optimizers,
        metavar="A,B",
        help=f"optimizer families to search (default {','.join(DEFAULTS.optimizers)})",
    )
    run.add_argument(
        "--embedding-rules",
        type=_names,
        default=DEFAULTS.embedding_rules,
        metavar="A,B",
        help=f"embedding-size rules to search (default {','.join(DEFAULTS.embedding_rules)})",
    )


def _names(text: str) -> tuple[str, ...]:
    """A comma-separated list of plugin names."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"expected names separated by commas, got {text!r}")
    return names


def _add_plugins(commands: Any) -> None:
    listing = commands.add_parser(
        "plugins",
        help="list installed plugins and their packages (exit 1 if one is missing or fails)",
    )
    listing.add_argument(
        "--check",
        action="store_true",
        help="import and instantiate each plugin (imports torch); without it, each plugin's "
        "module is only looked up",
    )
    listing.add_argument("--json", action="store_true", help="print one JSON object per plugin")
    listing.set_defaults(handler=cmd_plugins)


def cmd_plugins(args: argparse.Namespace) -> int:
    check = plugins.check_loads if args.check else plugins.check_found
    rows = [
        {**dataclasses.asdict(info), "group": info.group, "error": check(info)}
        for kind in plugins.GROUPS
        for info in sorted(plugins.entries(kind), key=lambda info: (info.name, info.package))
    ]
    if args.json:
        print("\n".join(json.dumps(row) for row in rows))
    else:
        print(format_plugins(rows, ok="loads" if args.check else "found"))
    return 1 if any(row["error"] for row in rows) else 0


def format_plugins(rows: list[dict[str, Any]], *, ok: str) -> str:
    """Each entry-point group, then one line per plugin: name, package, entry point, status."""
    cells = [(row["name"], f"{row['package']} {row['version']}", row["value"]) for row in rows]
    widths = [max((len(cell[i]) for cell in cells), default=0) for i in range(3)]
    lines = []
    for group in plugins.GROUPS.values():
        lines.append(group)
        for row, cell in zip(rows, cells, strict=True):
            if row["group"] == group:
                status = f"FAILS: {row['error']}" if row["error"] else ok
                padded = "  ".join(
                    text.ljust(width) for text, width in zip(cell, widths, strict=True)
                )
                lines.append(f"  {padded}  {status}")
        if lines[-1] == group:
            lines.append("  (none installed)")
    return "\n".join(lines)


def _add_export(commands: Any) -> None:
    export = commands.add_parser(
        "export", help="refit a study's best trial as `run` did and write its model bundle"
    )
    export.add_argument("--study", help="the study (default: the storage's only study)")
    export.add_argument("--storage", default=DEFAULTS.storage, help="the study storage URL")
    export.add_argument("--out", metavar="DIR", help="bundle folder (default STUDIES/STUDY/best)")
    export.add_argument("--data", help="the study's data file, if it has moved since the search")
    export.add_argument("--device", help="refit on this device instead of the study's")
    export.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    export.set_defaults(handler=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from carsearch.api import export_study

    result = export_study(
        args.study, storage=args.storage, out=args.out, data=args.data, device=args.device
    )
    _print_summary(result.summary, as_json=args.json)
    return 0


def _add_predict(commands: Any) -> None:
    predict = commands.add_parser("predict", help="predict the rows of a CSV with a bundle")
    predict.add_argument("--model", required=True, metavar="DIR", help="a bundle folder")
    predict.add_argument("--input", required=True, metavar="CSV", help="rows to predict")
    predict.add_argument("--output", metavar="CSV", help="where to write (default stdout)")
    predict.add_argument(
        "--unseen",
        choices=("error", "most_frequent"),
        default="error",
        help="a value not seen in training: stop (default), or read it as its column's most "
        "frequent training value",
    )
    predict.set_defaults(handler=cmd_predict)


def cmd_predict(args: argparse.Namespace) -> int:
    from carsearch.bundle.predictor import load
    from carsearch.data.read import read_frame

    predictor = load(args.model, unseen=args.unseen)
    result = predictor.predict_frame(read_frame(args.input))
    result.to_csv(args.output or sys.stdout, index=False)
    return 0


def _add_best(commands: Any) -> None:
    best = commands.add_parser("best", help="show a study's best trial and its bundle")
    best.add_argument("--study", help="the study (default: the storage's only study)")
    best.add_argument("--storage", default=DEFAULTS.storage, help="the study storage URL")
    best.add_argument("--json", action="store_true", help="print it as one JSON object")
    best.set_defaults(handler=cmd_best)


def cmd_best(args: argparse.Namespace) -> int:
    from carsearch.pipeline import summarize
    from carsearch.search.study import open_existing

    _print_summary(
        summarize(open_existing(args.study, args.storage), args.storage), as_json=args.json
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
