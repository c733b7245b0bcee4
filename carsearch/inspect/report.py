"""A study's report: one self-contained HTML file that opens offline.

The search's figures come from :mod:`optuna.visualization`; carsearch draws only what Optuna
has no figure for: the class distribution of the study's data (recorded on the study when it
was created, so the data is not read again) and, when the study has an export bundle, the
test confusion matrix. plotly.js is written into the file once, so the
report needs no network.
"""

from __future__ import annotations

import html
import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import plotly.graph_objects as go
import plotly.io
import plotly.offline

from carsearch.bundle.artifacts import bundle_path
from carsearch.bundle.format import carsearch_version, read_manifest
from carsearch.data.schema import REGRESSION
from carsearch.ensemble.study import ENSEMBLE_ATTR
from carsearch.exceptions import BundleError, ConfigError
from carsearch.inspect import figures
from carsearch.names import file_name
from carsearch.search.study import CONFIG_ATTR, DATA_ATTR, count_trials

logger = logging.getLogger("carsearch")

#: The categorical parameters that get a slice plot of their own.
SLICE_PARAMS: tuple[str, ...] = ("embedding_rule", "optimizer")
#: Axes of the parallel-coordinates figure besides the objective: more overlap unreadably.
PARALLEL_AXES = 8
#: Pixels; eight figures and the tables fit a 1400 x 5000 screenshot.
FIGURE_HEIGHT = 420
_PLOT_CONFIG = {"displaylogo": False, "responsive": True}
#: How a report marks itself (the start of its ``<meta name="generator">`` tag), so that
#: ``report --out`` replaces only reports.
GENERATOR = '<meta name="generator" content="carsearch'
#: Bytes read from the start of an existing file to find :data:`GENERATOR`.
MARKER_BYTES = 4096


@dataclass(frozen=True)
class Section:
    """One titled part of the report: a figure, a table, or a note why neither is there."""

    title: str
    body: str


def write_report(study: optuna.Study, path: str | Path) -> Path:
    """Write the report of ``study`` to ``path`` (its folder is created); returns the path.

    An existing file there is replaced only if it is a carsearch report.

    Raises:
        ConfigError: ``path`` is a folder, or a file that is not a carsearch report; it is
            left as it was.

    Example:
        >>> study = optuna.load_study(study_name="cars", storage="sqlite:///s.db")  # doctest: +SKIP
        >>> write_report(study, "cars.html")  # doctest: +SKIP
        PosixPath('cars.html')
    """
    path = Path(path)
    check_report_path(path)
    page_text = render_report(study)
    path.parent.mkdir(parents=True, exist_ok=True)
    check_report_path(path)  # again: rendering takes seconds
    path.write_text(page_text, encoding="utf-8")
    logger.debug("report of study %r written to %s", study.study_name, path)  # the CLI prints it
    return path


def default_report_path(study_name: str) -> Path:
    """``STUDY-report.html`` in the working folder, the study name made a safe file name.

    Example:
        >>> default_report_path("cars")
        PosixPath('cars-report.html')
    """
    return Path(f"{file_name(study_name)}-report.html")


def check_report_path(path: Path) -> None:
    """Refuse ``path`` unless it is missing or a carsearch report (its first
    :data:`MARKER_BYTES` hold :data:`GENERATOR`, or the title of a report made before it).

    Raises:
        ConfigError: ``path`` is a folder, a device, or a file of other content.
    """
    if not path.exists():
        return
    refused = f"{path}: exists and is not a carsearch report; choose another --out"
    if not path.is_file():
        raise ConfigError(refused)
    with path.open("rb") as handle:
        head = handle.read(MARKER_BYTES).decode("utf-8", errors="replace")
    if GENERATOR not in head and "<title>carsearch report: " not in head:
        raise ConfigError(refused)


def render_report(study: optuna.Study) -> str:
    """The report of ``study`` as one HTML page."""
    sections = [
        summary_section(study),
        *search_sections(study),
        class_section(study),
        *ensemble_sections(study),
        *bundle_sections(study),
    ]
    return page(f"carsearch report: {study.study_name}", sections)


def search_sections(study: optuna.Study) -> list[Section]:
    """Optuna's figures of the search: history, importances, coordinates, curves, slices."""
    vis = optuna.visualization
    builders: list[tuple[str, Callable[[], go.Figure]]] = [
        ("Optimization history", lambda: vis.plot_optimization_history(study)),
        ("Parameter importances (PED-ANOVA)", lambda: plot_importances(study)),
        (
            "Parallel coordinates (the most important parameters)",
            lambda: vis.plot_parallel_coordinate(study, params=parallel_params(study)),
        ),
        ("Intermediate values (pruning curves)", lambda: vis.plot_intermediate_values(study)),
    ]
    builders.extend(
        (f"Slice: {name}", partial(vis.plot_slice, study, [name])) for name in SLICE_PARAMS
    )
    return [figure_section(title, build) for title, build in builders]


def ensemble_sections(study: optuna.Study) -> list[Section]:
    """The exported ensemble's validation score against its size, when one was made."""
    ensemble = study.user_attrs.get(ENSEMBLE_ATTR)
    if not isinstance(ensemble, dict):
        return []
    title = "Ensemble: validation score by size"
    return [figure_section(title, partial(figures.ensemble_scores, ensemble))]


def plot_importances(study: optuna.Study) -> go.Figure:
    """Parameter importances by PED-ANOVA, which needs no scikit-learn (fANOVA does)."""
    evaluator = optuna.importance.PedAnovaImportanceEvaluator()
    return optuna.visualization.plot_param_importances(study, evaluator=evaluator)


def parallel_params(study: optuna.Study) -> list[str]:
    """The :data:`PARALLEL_AXES` most important parameters by PED-ANOVA (the first ones where
    importances cannot be computed), of those every completed trial has: a trial lacking one
    would be left out of the figure."""
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        return []
    common = set.intersection(*(set(trial.params) for trial in complete))
    ranked = [name for name in complete[0].params if name in common]
    evaluator = optuna.importance.PedAnovaImportanceEvaluator()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # small studies: "may be inaccurate"
            importances = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (ValueError, RuntimeError, KeyError, ZeroDivisionError):
        importances = {}
    ranked.sort(key=lambda name: -importances.get(name, -1.0))
    return ranked[:PARALLEL_AXES]


def figure_section(title: str, build: Callable[[], go.Figure]) -> Section:
    """A section holding ``build()``'s figure, or saying why it cannot be drawn."""
    try:
        with warnings.catch_warnings():
            # Small studies make Optuna warn that importances are rough; the figure shows it.
            warnings.simplefilter("ignore")
            figure = build()
    except (ValueError, RuntimeError, KeyError, ZeroDivisionError) as error:
        return Section(title, note(f"Not available for this study: {error}"))
    return Section(title, figure_html(figure))


def figure_html(figure: go.Figure) -> str:
    """A figure as a ``<div>`` drawn by the page's one copy of plotly.js.

    The section's heading names the figure, so Optuna's own title is dropped to save room.
    """
    figure.update_layout(title_text="", height=FIGURE_HEIGHT, margin={"t": 40, "b": 60})
    fragment: str = plotly.io.to_html(
        figure, full_html=False, include_plotlyjs=False, config=_PLOT_CONFIG
    )
    return f'<div class="figure">{fragment}</div>'


def summary_section(study: optuna.Study) -> Section:
    """The study at a glance: trials by outcome, the best value and its parameters."""
    counts = count_trials(study)
    rows = [("trials", ", ".join(f"{n} {state}" for state, n in counts.items() if n))]
    metric = study.user_attrs.get(CONFIG_ATTR, {}).get("metric", "objective")
    rows.append(("objective", f"validation {metric}, {study.direction.name.lower()}d"))
    try:
        best = study.best_trial
    except ValueError:
        rows.append(("best", "no completed trial yet"))
    else:
        rows.append(("best", f"trial {best.number}: value {best.value:.6g}"))
        rows.extend(bundle_rows(study, best.number))
        rows.extend((f"param {key}", str(value)) for key, value in best.params.items())
    return Section(f"Study {study.study_name}", table(("", ""), rows, header=False))


def bundle_rows(study: optuna.Study, best: int) -> list[tuple[str, str]]:
    """The export bundle's test scores and folder, for the report's first table."""
    folder = bundle_path(study)
    if folder is None:
        return [("bundle", "none yet (carsearch export)")]
    try:
        record = read_manifest(folder)
        test = record["test"]
        if record.get("task") == REGRESSION:
            scores = figures.regression_scores(test)
        else:
            scores = ", ".join(f"{key} {test[key]:.4f}" for key in ("accuracy", "macro_f1"))
    except (BundleError, KeyError, TypeError, ValueError) as error:
        return [("bundle", f"{folder} (cannot be read: {error})")]
    of = "" if record.get("trial") == best else f" (of trial {record.get('trial')})"
    return [("test", scores + of), ("bundle", str(folder))]


def class_section(study: optuna.Study) -> Section:
    """The pie chart of the study's classes, or its numeric target's histogram, as recorded
    when the study was created."""
    record = study.user_attrs.get(DATA_ATTR)
    if isinstance(record, dict) and record.get("task") == REGRESSION:
        figure = figures.target_histogram(record["target_histogram"], record["target"])
        described = note(f"{record['target']} in {record['source']}, {record['rows']} rows")
        return Section("Target distribution", described + figure_html(figure))
    title = "Class distribution"
    if not isinstance(record, dict) or not isinstance(record.get("class_counts"), dict):
        return Section(title, note("This study did not record its data (made by carsearch 0.1)."))
    counts: dict[str, int] = record["class_counts"]
    figure = go.Figure(go.Pie(labels=list(counts), values=list(counts.values()), sort=False))
    described = note(f"{record['target']} in {record['source']}, {record['rows']} rows")
    return Section(title, described + figure_html(figure))


def bundle_sections(study: optuna.Study) -> list[Section]:
    """The test confusion matrix and per-class scores of the study's export bundle."""
    title = "Test set (export bundle)"
    folder = bundle_path(study)
    if folder is None:
        return [Section(title, note("This study has no export bundle (see carsearch export)."))]
    try:
        record = read_manifest(folder)
        if record.get("task") == REGRESSION:
            return regression_sections(title, record["test"], record["schema"]["target"])
        classes = [str(name) for name in record["classes"]]
        matrix = np.asarray(record["test"]["confusion_matrix"], dtype=float)
    except (BundleError, ValueError, KeyError, TypeError) as error:
        return [Section(title, note(f"The bundle at {folder} cannot be read: {error}"))]
    test = record["test"]
    scores = ", ".join(f"{key} {test[key]:.4f}" for key in ("accuracy", "macro_f1", "log_loss"))
    figure = figure_html(confusion(matrix, classes))
    return [
        Section(f"{title}: confusion matrix", note(scores) + figure),
        Section("Per-class precision, recall and F1", per_class_table(matrix, classes)),
    ]


def regression_sections(title: str, test: dict[str, Any], target: str) -> list[Section]:
    """Predicted against true, and the residuals, on the bundle's test rows."""
    shown = note(f"{figures.regression_scores(test)}; {len(test['points'])} of {test['rows']} rows")
    return [
        Section(
            f"{title}: predicted against true",
            shown + figure_html(figures.predicted_against_true(test["points"], target)),
        ),
        Section("Residuals", figure_html(figures.residuals(test["points"], target))),
    ]


def confusion(matrix: np.ndarray, classes: Sequence[str]) -> go.Figure:
    """The confusion matrix as an annotated heatmap, true classes down, predictions across."""
    figure = go.Figure(
        go.Heatmap(
            z=matrix,
            x=list(classes),
            y=list(classes),
            colorscale="Blues",
            texttemplate="%{z:.0f}",
            hovertemplate="true %{y}, predicted %{x}: %{z:.0f}<extra></extra>",
        )
    )
    figure.update_layout(xaxis_title="predicted", yaxis_title="true", yaxis_autorange="reversed")
    return figure


def per_class_scores(matrix: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support per class; 0 where a class is never predicted or seen.

    Example:
        >>> scores = per_class_scores(np.array([[3.0, 1.0], [0.0, 2.0]]))
        >>> [round(float(v), 3) for v in scores["precision"]]
        [1.0, 0.667]
    """
    hits = np.diag(matrix)
    predicted, support = matrix.sum(axis=0), matrix.sum(axis=1)
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    recall = np.divide(hits, support, out=np.zeros_like(hits), where=support > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(hits), where=total > 0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support}


def per_class_table(matrix: np.ndarray, classes: Sequence[str]) -> str:
    """The per-class scores of a confusion matrix as an HTML table."""
    scores = per_class_scores(matrix)
    rows = [
        (
            name,
            f"{scores['precision'][i]:.3f}",
            f"{scores['recall'][i]:.3f}",
            f"{scores['f1'][i]:.3f}",
            f"{scores['support'][i]:.0f}",
        )
        for i, name in enumerate(classes)
    ]
    return table(("class", "precision", "recall", "F1", "support"), rows)


def table(columns: Sequence[str], rows: Sequence[Sequence[str]], *, header: bool = True) -> str:
    """An HTML table of strings, escaped."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns) if header else ""
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table>{f'<tr>{head}</tr>' if head else ''}{body}</table>"


def note(text: str) -> str:
    """A short paragraph of plain text."""
    return f'<p class="note">{html.escape(text)}</p>'


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1300px; color: #222; }
section { margin-bottom: 2.5rem; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: .3rem; }
table { border-collapse: collapse; }
td, th { padding: .25rem .8rem; border-bottom: 1px solid #eee; text-align: left; }
.note { color: #555; }
"""


def page(title: str, sections: Sequence[Section]) -> str:
    """The whole HTML document, with plotly.js inline."""
    parts = [f"<section><h2>{html.escape(s.title)}</h2>{s.body}</section>" for s in sections]
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f'{GENERATOR} {html.escape(carsearch_version())}">',
            f"<title>{html.escape(title)}</title>",
            f"<style>{_STYLE}</style>",
            f'<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script>',
            "</head><body>",
            f"<h1>{html.escape(title)}</h1>",
            *parts,
            "</body></html>",
        ]
    )
