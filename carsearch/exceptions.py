"""The exceptions carsearch raises.

Every error that a user can cause derives from :class:`CarsearchError`, and each subclass also
derives from the matching builtin, so ``except ValueError`` keeps working for callers that do
not know carsearch.
"""

from __future__ import annotations


class CarsearchError(Exception):
    """Base class of every error carsearch raises on purpose."""


class ConfigError(CarsearchError, ValueError):
    """A run option is out of range or inconsistent with another."""


class DataError(CarsearchError, ValueError):
    """A table cannot be used: names the file, the column or value, and the rule."""


class PluginError(CarsearchError, LookupError):
    """A plugin is unknown, fails to import, has the wrong type, or is registered twice."""


class StudyError(CarsearchError, ValueError):
    """A study is missing, empty, or was made from other data."""


class StorageError(CarsearchError, OSError):
    """The study's storage failed mid-run (a full disk, a lost server); finished trials are
    kept and the same command resumes."""


class BundleError(CarsearchError, ValueError):
    """An exported model bundle is missing files, malformed or inconsistent."""


class TrainingError(CarsearchError, RuntimeError):
    """Training cannot go on (a NaN loss, a trial over its time limit); ends that trial."""
