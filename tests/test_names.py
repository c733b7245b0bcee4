"""Study names as file names: one safe name each, never shared by two studies."""

from __future__ import annotations

import pytest

from carsearch.bundle.artifacts import default_bundle_dir
from carsearch.names import MAX_LENGTH, file_name

HOSTILE = [
    ".",
    "..",
    "...",
    "",
    " ",
    "a/b",
    "a_b",
    "a\\b",
    "../x",
    "../../etc/passwd",
    "/abs/x",
    "_abs_x",
    ".hidden",
    "_hidden",
    "x\x00y",
    "a" * 1000,
    "a" * 1000 + "b",
    "é" * 300,
    "a+b",
    "C:\\x",
]


@pytest.mark.parametrize("name", ["car_evaluation", "tiny", "run-2.1", "étude", "a" * MAX_LENGTH])
def test_a_plain_name_is_kept_as_it_is(name: str) -> None:
    assert file_name(name) == name


@pytest.mark.parametrize("name", HOSTILE)
def test_every_name_becomes_one_safe_file_name(name: str) -> None:
    safe = file_name(name)
    assert "/" not in safe and "\\" not in safe and "\x00" not in safe
    assert safe not in ("", ".", "..") and not safe.startswith(".")
    assert len(safe) <= MAX_LENGTH and len(safe.encode()) + len(".partial-0000000-00000000") < 255
    assert file_name(name) == safe  # the same name, the same file, every time


def test_different_names_never_share_a_file_name() -> None:
    names = [*HOSTILE, "car_evaluation", "_", "_x", "a_b+0123456789"]
    assert len({file_name(name) for name in names}) == len(names)


def test_studies_named_dot_and_dot_dot_get_different_bundle_folders() -> None:
    storage = "sqlite:///studies/carsearch.db"
    dot, dot_dot = default_bundle_dir(storage, "."), default_bundle_dir(storage, "..")
    assert dot != dot_dot
    for folder in (dot, dot_dot):
        assert folder.parent.parent.as_posix() == "studies/carsearch"
        assert ".." not in folder.parts
