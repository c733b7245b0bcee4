"""The README is a short front door whose links work, and the docs agree with the code."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

import carsearch
from carsearch.cli import build_parser, main
from carsearch.search.spacedoc import space_table

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def test_the_readme_is_a_front_door_of_at_most_150_lines() -> None:
    assert len((REPO / "README.md").read_text().splitlines()) <= 150


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_relative_links_point_at_files_that_exist(page: Path) -> None:
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", page.read_text())
    local = [link for link in links if not re.match(r"[a-z]+://", link)]
    missing = [link for link in local if not (page.parent / link).exists()]
    assert not missing, f"{page.name} links to missing {missing}"


def test_the_readme_lists_every_command() -> None:
    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    listed = set(re.findall(r"^\| `carsearch (\w+)`", (REPO / "README.md").read_text(), re.M))
    assert listed == set(commands)


def test_the_search_space_page_is_the_one_the_code_generates() -> None:
    page = (REPO / "docs" / "search-space.md").read_text()
    assert page == space_table(), "run: python -m carsearch.search.spacedoc > docs/search-space.md"


def test_ci_runs_the_readmes_two_commands_each_pip_step_resolvable_by_pip_23() -> None:
    """.ci/run extracts the README's ```bash blocks; pip 23.2 (Python 3.11's venv) cannot
    resolve the example package against an editable install with extras on one pip line."""
    extract = ["awk", r"/^```bash$/ {inside = 1; next} /^```$/ {inside = 0} inside", "README.md"]
    assert (
        "awk '/^```bash$/ {inside = 1; next} /^```$/ {inside = 0} inside' README.md"
        in (REPO / ".ci" / "run").read_text()
    )
    commands = subprocess.run(extract, cwd=REPO, capture_output=True, text=True, check=True)
    lines = commands.stdout.splitlines()
    assert len(lines) == 2 and lines[0].endswith("carsearch run --trials 100")
    steps = [step.strip() for line in lines for step in line.split("&&")]
    mixed = [s for s in steps if s.startswith("pip install") and ".[" in s and "examples/" in s]
    assert not mixed, mixed
    assert steps[-1] == "pytest"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"carsearch {carsearch.__version__}\n"
