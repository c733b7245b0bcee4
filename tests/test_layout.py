"""The package stays easy to read: small modules and functions, one-way imports, cheap import."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import carsearch

PACKAGE = Path(__file__).resolve().parents[1] / "carsearch"
MODULES = sorted(PACKAGE.rglob("*.py"))
#: Lower layers first; a module may import its own layer and those before it, never later ones.
LAYERS = (
    ("exceptions", "config", "plugins", "_lazy", "summary", "names", "urls"),
    ("storage",),  # Optuna's storage, behind one object: needs nothing of carsearch above
    ("data",),
    ("models",),
    ("training",),
    ("ensemble",),
    ("search",),
    ("bundle",),
    ("inspect",),
    ("pipeline",),
    ("api", "testing"),
    ("cli",),
)


def test_layers_are_whole_packages() -> None:
    """A module given a layer of its own would hide its package's upward imports."""
    carved = [prefix for layer in LAYERS for prefix in layer if "." in prefix]
    assert not carved, carved


def layer_of(module: str) -> int:
    """The layer of ``carsearch.<module>``: the longest matching prefix decides."""
    matches = [
        (len(prefix), rank)
        for rank, prefixes in enumerate(LAYERS)
        for prefix in prefixes
        if module == prefix or module.startswith(prefix + ".")
    ]
    return max(matches)[1]


def dotted(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(part for part in parts if part != "__init__")


def runtime_imports(tree: ast.Module) -> list[ast.ImportFrom]:
    """The ``from ... import`` statements that run, not those under ``if TYPE_CHECKING:``."""
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
        for inner in ast.walk(node)
    }
    return [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and id(n) not in typing_only]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_stay_under_400_lines_and_functions_under_60(path: Path) -> None:
    text = path.read_text()
    assert len(text.splitlines()) <= 400
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.FunctionDef) and node.end_lineno - node.lineno + 1 > 60
    ]
    assert not long


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_only_go_down_the_layers(path: Path) -> None:
    name = dotted(path)
    if not name:
        return  # carsearch/__init__.py re-exports the top layers on purpose, lazily
    upward = []
    for node in runtime_imports(ast.parse(path.read_text())):
        if (node.module or "").startswith("carsearch."):
            target = node.module.removeprefix("carsearch.")  # type: ignore[union-attr]
            if layer_of(target) > layer_of(name):
                upward.append(target)
    assert not upward, f"carsearch.{name} imports the higher layer(s) {upward}"


@pytest.mark.parametrize(
    "code",
    [
        "import carsearch",
        "from carsearch.cli import main; main(['--help'])",
        "from carsearch.cli import main; main(['plugins'])",
    ],
)
def test_cheap_entry_points_do_not_import_torch(code: str) -> None:
    probe = (
        f"{code}\n" if "--help" not in code else f"try:\n    {code}\nexcept SystemExit:\n    pass\n"
    )
    probe += "import sys; print(sorted(m for m in ('torch', 'optuna') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"


#: The module paths of carsearch 0.1, importable with a warning in 0.2, removed in 0.3.
REMOVED_IN_0_3 = (
    "carsearch.model",
    "carsearch.rules",
    "carsearch.optimizers",
    "carsearch.datasets",
    "carsearch.export",
    "carsearch.predictor",
)


@pytest.mark.parametrize("name", REMOVED_IN_0_3)
def test_the_module_paths_of_0_1_are_gone(name: str) -> None:
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(name)


def test_the_package_says_the_version_pyproject_gives() -> None:
    pyproject = (PACKAGE.parent / "pyproject.toml").read_text()
    assert f'\nversion = "{carsearch.__version__}"\n' in pyproject
