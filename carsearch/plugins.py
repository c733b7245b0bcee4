"""The plugin registry: entry points, loaded lazily, checked strictly.

Four entry-point groups extend carsearch; each maps a name to ``module:attr``, a class
deriving from the group's base. carsearch's own built-ins are entry points of the carsearch
distribution, registered exactly as a third-party package registers its own. Listing reads
metadata only; :func:`load` imports the one plugin asked for.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from carsearch.exceptions import PluginError

GROUPS: dict[str, str] = {
    "models": "carsearch.models",
    "embedding_rules": "carsearch.embedding_rules",
    "optimizers": "carsearch.optimizers",
    "datasets": "carsearch.datasets",
}
_BASES: dict[str, str] = {
    "models": "carsearch.model:ModelPlugin",
    "embedding_rules": "carsearch.rules:EmbeddingRule",
    "optimizers": "carsearch.optimizers:OptimizerPlugin",
    "datasets": "carsearch.datasets:DatasetPlugin",
}


@dataclass(frozen=True)
class PluginInfo:
    """One registered plugin, as its entry point declares it (nothing imported)."""

    kind: str
    name: str
    value: str
    package: str
    version: str

    @property
    def group(self) -> str:
        return GROUPS[self.kind]


def available(kind: str) -> dict[str, PluginInfo]:
    """Every plugin of ``kind`` by name, read from entry-point metadata alone.

    Raises:
        PluginError: ``kind`` is unknown, or two entry points share one name.
    """
    group = _group(kind)
    found: dict[str, PluginInfo] = {}
    for entry in metadata.entry_points(group=group):
        dist = entry.dist
        info = PluginInfo(
            kind=kind,
            name=entry.name,
            value=entry.value,
            package=dist.name if dist else "?",
            version=dist.version if dist else "?",
        )
        if info.name in found and found[info.name].value != info.value:
            other = found[info.name]
            raise PluginError(
                f"two plugins named {info.name!r} in entry-point group {group!r}: "
                f"{other.value} (from {other.package}) and {info.value} (from {info.package}); "
                "uninstall one of them"
            )
        found[info.name] = info
    return found


def load(kind: str, name: str) -> Any:
    """Import the plugin ``name`` of ``kind`` and return an instance of it.

    Raises:
        PluginError: the name is unknown (the message lists the valid names), the plugin
            fails to import, or it does not derive from the group's base class.
    """
    plugins = available(kind)
    if name not in plugins:
        valid = ", ".join(sorted(plugins)) or "none installed"
        raise PluginError(
            f"unknown {kind[:-1].replace('_', ' ')} {name!r}; valid names: {valid} "
            f"(entry-point group {GROUPS[kind]!r})"
        )
    info = plugins[name]
    try:
        obj = _import(info.value)
    except Exception as error:  # a broken plugin may raise anything on import
        raise PluginError(
            f"plugin {name!r} ({info.value}, from {info.package} {info.version}) failed to "
            f"import: {type(error).__name__}: {error}"
        ) from error
    base = _import(_BASES[kind])
    if not (isinstance(obj, type) and issubclass(obj, base)):
        raise PluginError(
            f"plugin {name!r} ({info.value}, from {info.package}) is not a subclass of "
            f"{base.__module__}.{base.__qualname__}"
        )
    return obj()


def describe(kind: str, name: str) -> dict[str, str]:
    """Name, providing package and version of a plugin: what studies and bundles record."""
    info = available(kind).get(name)
    if info is None:
        return {"name": name, "package": "?", "version": "?"}
    return {"name": name, "package": info.package, "version": info.version}


def check_loads(info: PluginInfo) -> str | None:
    """``None`` when the plugin loads, else the reason it does not."""
    try:
        load(info.kind, info.name)
    except PluginError as error:
        return str(error)
    return None


def _group(kind: str) -> str:
    if kind not in GROUPS:
        raise PluginError(f"unknown plugin kind {kind!r}; kinds are {', '.join(GROUPS)}")
    return GROUPS[kind]


def _import(value: str) -> Any:
    module_name, _, attr = value.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split(".") if attr else []:
        obj = getattr(obj, part)
    return obj
