"""The plugin registry: entry points, loaded lazily, checked strictly.

Plugin authors import the base classes from here (``from carsearch.plugins import
ModelPlugin``); they are imported on first use, so listing plugins needs no torch.

Five entry-point groups extend carsearch; each maps a name to ``module:attr``, a class
deriving from the group's base (models: ``ModelPlugin`` for a network carsearch trains,
``EstimatorPlugin`` for a model its own library trains). carsearch's own built-ins are
entry points of the carsearch distribution, registered exactly as a third-party package
registers its own. Listing reads
metadata only; :func:`load` imports the one plugin asked for.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any

from carsearch.exceptions import PluginError

if TYPE_CHECKING:
    from carsearch.config import RunConfig
    from carsearch.data.datasets import DatasetPlugin as DatasetPlugin
    from carsearch.models.base import EstimatorPlugin as EstimatorPlugin
    from carsearch.models.base import ModelPlugin as ModelPlugin
    from carsearch.models.base import Rows as Rows
    from carsearch.models.base import SearchContext as SearchContext
    from carsearch.models.numeric import NumericEncoder as NumericEncoder
    from carsearch.models.rules import EmbeddingRule as EmbeddingRule
    from carsearch.training.optimizers import OptimizerPlugin as OptimizerPlugin

GROUPS: dict[str, str] = {
    "models": "carsearch.models",
    "embedding_rules": "carsearch.embedding_rules",
    "optimizers": "carsearch.optimizers",
    "numeric_encoders": "carsearch.numeric_encoders",
    "datasets": "carsearch.datasets",
}
#: The classes a plugin of each group derives from (one of them).
_BASES: dict[str, tuple[str, ...]] = {
    "models": ("carsearch.models.base:ModelPlugin", "carsearch.models.base:EstimatorPlugin"),
    "embedding_rules": ("carsearch.models.rules:EmbeddingRule",),
    "optimizers": ("carsearch.training.optimizers:OptimizerPlugin",),
    "numeric_encoders": ("carsearch.models.numeric:NumericEncoder",),
    "datasets": ("carsearch.data.datasets:DatasetPlugin",),
}
_NOUNS: dict[str, str] = {
    "models": "model",
    "embedding_rules": "embedding rule",
    "optimizers": "optimizer",
    "numeric_encoders": "numeric encoder",
    "datasets": "data set",
}


@dataclass(frozen=True)
class PluginInfo:
    """One registered plugin, as its entry point declares it (nothing imported).

    Example:
        >>> from carsearch import plugins
        >>> info = plugins.find("models", "mlp")
        >>> info.value, info.package, info.group
        ('carsearch.models.mlp:EmbeddingMLPPlugin', 'carsearch', 'carsearch.models')
    """

    kind: str
    name: str
    value: str
    package: str
    version: str

    @property
    def group(self) -> str:
        return GROUPS[self.kind]


def entries(kind: str) -> list[PluginInfo]:
    """Every entry point of ``kind``, duplicated names included, from metadata alone."""
    found = []
    for entry in metadata.entry_points(group=_group(kind)):
        dist = entry.dist
        package, version = (dist.name, dist.version) if dist else ("?", "?")
        found.append(PluginInfo(kind, entry.name, entry.value, package, version))
    return found


def find(kind: str, name: str) -> PluginInfo:
    """The registered plugin ``name`` of ``kind``, not imported.

    Raises:
        PluginError: the name is unknown (the message lists the valid names and the group),
            or two packages register it (the message names both).
    """
    found = entries(kind)
    # One distribution seen twice (on two paths) is one plugin; two packages are two.
    matches = {(info.value, info.package): info for info in found if info.name == name}
    if not matches:
        valid = ", ".join(sorted({info.name for info in found})) or "none installed"
        raise PluginError(
            f"unknown {_NOUNS[kind]} {name!r}; valid names: {valid} "
            f"(entry-point group {GROUPS[kind]!r})"
        )
    if len(matches) > 1:
        both = " and ".join(f"{i.value} (from {i.package} {i.version})" for i in matches.values())
        raise PluginError(
            f"two plugins named {name!r} in entry-point group {GROUPS[kind]!r}: {both}; "
            "uninstall one of them"
        )
    return next(iter(matches.values()))


def load(kind: str, name: str) -> Any:
    """Import the plugin ``name`` of ``kind`` and return an instance of it.

    Raises:
        PluginError: the name is unknown (the message lists the valid names), the plugin
            fails to import or to instantiate, or it does not derive from the group's base.
    """
    return instantiate(find(kind, name))


@functools.cache
def instance(kind: str, name: str) -> Any:
    """The plugin ``name`` of ``kind``, imported and instantiated once per process.

    Plugins are stateless, so one instance serves every trial, refit and bundle.

    Raises:
        PluginError: as :func:`load`.
    """
    return load(kind, name)


def instantiate(info: PluginInfo) -> Any:
    """Import the plugin ``info`` declares, check its type, and return an instance.

    Raises:
        PluginError: naming the plugin, its entry point and package, and what went wrong.
    """
    origin = f"plugin {info.name!r} ({info.value}, from {info.package} {info.version})"
    try:
        obj = _import(info.value)
    except Exception as error:  # a broken plugin may raise anything on import
        raise PluginError(f"{origin} failed to import: {_reason(error)}") from error
    bases = tuple(_import(base) for base in _BASES[info.kind])
    if not (isinstance(obj, type) and issubclass(obj, bases)):
        names = " or ".join(f"{base.__module__}.{base.__qualname__}" for base in bases)
        raise PluginError(f"{origin} is {_a(obj)}, not a subclass of {names}")
    try:
        return obj()
    except Exception as error:  # an abstract class, or a constructor that needs arguments
        raise PluginError(f"{origin} cannot be instantiated: {_reason(error)}") from error


def describe(kind: str, name: str) -> dict[str, str]:
    """Name, providing package and version of a plugin: what studies and bundles record."""
    if not any(info.name == name for info in entries(kind)):
        return {"name": name, "package": "?", "version": "?"}
    info = find(kind, name)
    return {"name": name, "package": info.package, "version": info.version}


def check_found(info: PluginInfo) -> str | None:
    """``None`` when the plugin's module is installed (found, not imported), else why not."""
    module_name = info.value.partition(":")[0].strip()
    origin = f"plugin {info.name!r} ({info.value}, from {info.package} {info.version})"
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError) as error:  # a parent package is missing or fails
        return f"{origin} is not importable: {_reason(error)}"
    if spec is None:
        return f"{origin} is not importable: no module named {module_name!r}"
    return None


def check_loads(info: PluginInfo) -> str | None:
    """``None`` when the plugin loads by its name, else the reason it does not."""
    try:
        load(info.kind, info.name)
    except PluginError as error:
        return str(error)
    return None


def selected(config: RunConfig) -> dict[str, list[str]]:
    """The plugin names a run uses, by kind (a data set only when no ``--data`` file is given)."""
    names = {
        "models": list(config.models),
        "embedding_rules": list(config.embedding_rules),
        "optimizers": list(config.optimizers),
        "numeric_encoders": list(config.numeric_encoders),
    }
    if config.data is None:
        names["datasets"] = [config.dataset]
    return names


def check_selection(config: RunConfig) -> dict[str, list[dict[str, str]]]:
    """Load every plugin a run selects and describe each: what a study records.

    Raises:
        PluginError: a selected plugin is unknown or broken, before any work is done.
    """
    record: dict[str, list[dict[str, str]]] = {}
    for kind, names in selected(config).items():
        for name in names:
            load(kind, name)
        record[kind] = [describe(kind, name) for name in names]
    return record


def _group(kind: str) -> str:
    if kind not in GROUPS:
        raise PluginError(f"unknown plugin kind {kind!r}; kinds are {', '.join(GROUPS)}")
    return GROUPS[kind]


def _import(value: str) -> Any:
    module_name, _, attr = value.partition(":")
    obj: Any = importlib.import_module(module_name.strip())
    for part in attr.strip().split(".") if attr.strip() else []:
        obj = getattr(obj, part)
    return obj


def _reason(error: BaseException) -> str:
    first_line = str(error).strip().partition("\n")[0][:300]
    return f"{type(error).__name__}: {first_line}"


def _a(obj: Any) -> str:
    return f"class {obj.__qualname__}" if isinstance(obj, type) else f"a {type(obj).__name__}"


#: What plugin authors import from here, by its public name.
_PUBLIC: dict[str, str] = {
    **{value.rpartition(":")[2]: value for values in _BASES.values() for value in values},
    "SearchContext": "carsearch.models.base:SearchContext",
    "Rows": "carsearch.models.base:Rows",
}


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return _import(_PUBLIC[name])
    raise AttributeError(f"module 'carsearch.plugins' has no attribute {name!r}")
