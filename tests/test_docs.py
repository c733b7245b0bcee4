"""The README is a short front door whose links work, and the docs agree with the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from carsearch.cli import build_parser
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
