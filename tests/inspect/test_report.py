"""`carsearch report`: one self-contained HTML file, opened in a real (headless) browser."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import optuna
import pytest

import carsearch
from carsearch import RunConfig
from carsearch.bundle.artifacts import bundle_path
from carsearch.bundle.format import read_manifest
from carsearch.cli import main
from carsearch.inspect.report import (
    GENERATOR,
    MARKER_BYTES,
    PARALLEL_AXES,
    SLICE_PARAMS,
    parallel_params,
    per_class_scores,
    render_report,
    write_report,
)
from helpers import tiny_config

#: Records JavaScript errors into the DOM, and after loading, how many figures were drawn.
PROBE = """<script>
(function () {
  function record(message) {
    var item = document.createElement("div");
    item.className = "js-error";
    item.textContent = String(message);
    (document.body || document.documentElement).appendChild(item);
  }
  window.addEventListener("error", function (e) { record(e.message); });
  window.addEventListener("unhandledrejection", function (e) { record(e.reason); });
  window.addEventListener("load", function () {
    setTimeout(function () {
      var figures = document.querySelectorAll(".figure");
      var drawn = Array.prototype.filter.call(figures, function (figure) {
        var svg = figure.querySelector(".js-plotly-plot .main-svg");
        return svg !== null && svg.getBoundingClientRect().height > 100;
      });
      document.body.setAttribute("data-figures", figures.length);
      document.body.setAttribute("data-drawn", drawn.length);
    }, 0);
  });
})();
</script>"""

SECTIONS = (
    "Optimization history",
    "Parameter importances (PED-ANOVA)",
    "Parallel coordinates (the most important parameters)",
    "Intermediate values (pruning curves)",
    *(f"Slice: {name}" for name in SLICE_PARAMS),
    "Class distribution",
    "Ensemble: validation score by size",
    "Test set (export bundle): confusion matrix",
    "Per-class precision, recall and F1",
)


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> RunConfig:
    """One finished tiny run for the whole module: a few trials, a refit, its bundle."""
    config = tiny_config(tmp_path_factory.mktemp("report"), n_trials=4)
    carsearch.run(config)
    return config


@pytest.fixture
def study(searched: RunConfig) -> optuna.Study:
    return optuna.load_study(study_name="tiny", storage=searched.storage)


def find_chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no Chromium here (CI installs the Debian package chromium)")


def chromium(page: Path, profile: Path, *options: str) -> str:
    """Open ``page`` in headless Chromium with the network cut off; returns its stdout."""
    command = [
        find_chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        # Any host name fails to resolve: a page that fetches plotly.js from a CDN breaks.
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=15000",
        *options,
        page.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    return done.stdout


def test_report_renders_in_a_browser_without_errors(study: optuna.Study, tmp_path: Path) -> None:
    report = write_report(study, tmp_path / "report.html")
    probed = tmp_path / "probed.html"
    probed.write_text(report.read_text().replace("<head>", f"<head>{PROBE}", 1))

    screenshot = tmp_path / "report.png"
    dom = chromium(
        probed,
        tmp_path / "profile",
        "--dump-dom",
        f"--screenshot={screenshot}",
        "--window-size=1400,5000",
    )
    errors = re.findall(r'<div class="js-error">(.*?)</div>', dom)
    assert errors == []
    figures = re.search(r'data-figures="(\d+)" data-drawn="(\d+)"', dom)
    assert figures, "the probe did not run"
    assert figures.groups() == (str(len(SECTIONS) - 1),) * 2  # all but the per-class table

    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert screenshot.stat().st_size > 50_000  # drawn figures, not a blank page


def test_report_is_one_offline_file_with_every_section(study: optuna.Study) -> None:
    page = render_report(study)
    titles = re.findall(r"<h2>(.*?)</h2>", page)
    assert titles == [f"Study {study.study_name}", *SECTIONS]
    assert "<script src" not in page and "<link" not in page
    assert page.count("<script") == len(SECTIONS)  # plotly.js once, then a script per figure
    notes = re.findall(r'<p class="note">(.*?)</p>', page)
    assert len(notes) == 2 and notes[1].startswith("accuracy ")  # no excuses, only facts
    # One row per class in the per-class table, below its header.
    table = page.split("Per-class precision, recall and F1")[1]
    bundle = bundle_path(study)
    assert bundle is not None
    classes = read_manifest(bundle)["classes"]
    assert table.count("<tr>") == 1 + len(classes)
    assert all(f"<td>{name}</td>" in table for name in classes)


def test_report_of_a_study_without_carsearch_parts(tmp_path: Path) -> None:
    """A plain Optuna study: no bundle, no stored data, no carsearch parameters."""
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'plain.db'}", study_name="plain")
    study.optimize(lambda trial: trial.suggest_float("x", -1, 1) ** 2, n_trials=3)
    page = render_report(study)
    assert "This study has no export bundle" in page
    assert "This study did not record its data" in page
    assert page.count("Not available for this study") == len(SLICE_PARAMS)


def test_per_class_scores_from_a_confusion_matrix() -> None:
    matrix = np.array([[5.0, 1.0, 0.0], [2.0, 2.0, 0.0], [0.0, 0.0, 0.0]])
    scores = per_class_scores(matrix)
    np.testing.assert_allclose(scores["precision"], [5 / 7, 2 / 3, 0.0])
    np.testing.assert_allclose(scores["recall"], [5 / 6, 0.5, 0.0])
    np.testing.assert_allclose(scores["f1"], [2 * 5 / 13, 4 / 7, 0.0])
    np.testing.assert_allclose(scores["support"], [6, 4, 0])


def test_cli_writes_the_report(
    searched: RunConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out" / "tiny.html"
    assert main(["report", "--storage", searched.storage, "--out", str(out)]) == 0
    assert f"written to {out}" in capsys.readouterr().out
    assert out.read_text().count('class="figure"') == len(SECTIONS) - 1


def test_cli_report_names_the_studies_when_one_is_wrong(
    searched: RunConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "--storage", searched.storage, "--study", "nope"]) == 1
    assert "'tiny'" in capsys.readouterr().err


@pytest.fixture
def plain_storage(tmp_path: Path) -> str:
    """A SQLite file holding a plain Optuna study 'plain' of three trials."""
    storage = f"sqlite:///{tmp_path / 'plain.db'}"
    study = optuna.create_study(storage=storage, study_name="plain")
    study.optimize(lambda trial: trial.suggest_float("x", -1, 1) ** 2, n_trials=3)
    return storage


def test_report_out_never_overwrites_what_is_not_a_report(
    plain_storage: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = tmp_path / "notes.html"
    notes.write_text("<html><body>my notes</body></html>")
    folder = tmp_path / "folder.html"
    folder.mkdir()
    for out in (notes, folder):
        assert main(["report", "--storage", plain_storage, "--out", str(out)]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"error: {out}: exists and is not a carsearch report; choose another --out"]
    assert notes.read_text() == "<html><body>my notes</body></html>"
    assert list(folder.iterdir()) == []


def test_report_out_replaces_an_earlier_report(plain_storage: str, tmp_path: Path) -> None:
    out = tmp_path / "plain.html"
    assert main(["report", "--storage", plain_storage, "--out", str(out)]) == 0
    assert GENERATOR in out.read_text()[:MARKER_BYTES]
    out.write_text(out.read_text().replace("</body>", "<p>stale</p></body>"))
    assert main(["report", "--storage", plain_storage, "--out", str(out)]) == 0
    assert "<p>stale</p>" not in out.read_text()


def test_the_default_report_stays_in_the_working_folder_whatever_the_study_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = f"sqlite:///{tmp_path / 'names.db'}"
    names = ["../x", f"{tmp_path}/abs/x", ".", ".."]
    for name in names:
        optuna.create_study(storage=storage, study_name=name)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for name in names:
        assert main(["report", "--storage", storage, "--study", name]) == 0
    written = sorted(work.iterdir())
    assert len(written) == len(names)  # '.' and '..' do not share one
    assert all(path.name.endswith("-report.html") and path.is_file() for path in written)
    assert not (tmp_path / "x-report.html").exists() and not (tmp_path / "abs").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".html")] == []


def test_the_first_table_has_the_test_scores_and_the_bundle(study: optuna.Study) -> None:
    page = render_report(study)
    first = page.split("<h2>", 2)[1]
    manifest = read_manifest(bundle_path(study))
    test = manifest["test"]
    assert f"<td>test</td><td>accuracy {test['accuracy']:.4f}, macro_f1 " in first
    assert f"<td>bundle</td><td>{bundle_path(study)}</td>" in first


def test_parallel_coordinates_show_only_the_most_important_parameters(
    study: optuna.Study,
) -> None:
    shown = parallel_params(study)
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    common = set.intersection(*(set(t.params) for t in complete))
    assert len(common) > PARALLEL_AXES, "the tiny study searches more parameters than shown"
    assert len(shown) == PARALLEL_AXES and set(shown) <= common
    evaluator = optuna.importance.PedAnovaImportanceEvaluator()
    importances = optuna.importance.get_param_importances(study, evaluator=evaluator)
    ranked = sorted(common, key=lambda name: -importances.get(name, -1.0))
    assert [importances.get(name, -1.0) for name in shown] == [
        importances.get(name, -1.0) for name in ranked[:PARALLEL_AXES]
    ]
    figure = render_report(study).split("Parallel coordinates")[1].split("<h2>")[0]
    axes = json.loads("[" + re.findall(r'"ticktext":\[([^\]]*)\]', figure)[0] + "]")
    assert axes[0] == "Objective Value" and sorted(axes[1:]) == sorted(shown)
