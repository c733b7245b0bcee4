"""Module paths of carsearch 0.1 that moved in 0.2, kept importable with a warning.

``from carsearch.model import ModelPlugin`` (and the other paths in :data:`MOVED`) still
works: the old name is an alias module whose attributes come from the new modules. Nothing
is imported until an old path is used.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
import warnings
from collections.abc import Sequence
from typing import Any

#: Old module -> the modules that now hold its public names, searched in order.
MOVED: dict[str, tuple[str, ...]] = {
    "carsearch.model": (
        "carsearch.models.base",
        "carsearch.models.mlp",
        "carsearch.models.embedding",
        "carsearch.models.network",
    ),
    "carsearch.rules": ("carsearch.models.rules",),
    "carsearch.optimizers": ("carsearch.training.optimizers",),
    "carsearch.datasets": ("carsearch.data.datasets",),
    "carsearch.export": ("carsearch.api", "carsearch.bundle.artifacts"),
    "carsearch.predictor": ("carsearch.bundle.predictor",),
}


class AliasModule(types.ModuleType):
    """A module whose attributes are looked up in the modules that replaced it."""

    def __init__(self, name: str, targets: Sequence[str]) -> None:
        super().__init__(name, f"moved to {', '.join(targets)}")
        self.__targets = tuple(targets)

    def __getattr__(self, attr: str) -> Any:
        for target in self.__targets:
            module = importlib.import_module(target)
            if hasattr(module, attr):
                return getattr(module, attr)
        raise AttributeError(f"module {self.__name__!r} has no attribute {attr!r}")


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(
        self, fullname: str, path: Any = None, target: Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        targets = MOVED[spec.name]
        warnings.warn(
            f"{spec.name} moved to {', '.join(targets)} in carsearch 0.2; import from there "
            "(plugin base classes: from carsearch.plugins)",
            DeprecationWarning,
            stacklevel=2,
        )
        return AliasModule(spec.name, targets)

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to run: attributes are looked up on use."""


def install() -> None:
    """Make the old paths importable (once per process)."""
    if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.append(_Finder())
