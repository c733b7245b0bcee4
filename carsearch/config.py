"""The run configuration: one frozen, validated record of what a search does.

The CLI and :func:`carsearch.run` both build a :class:`RunConfig`; nothing downstream reads
command-line flags or globals. The configuration is stored on the study (as a user attribute),
so a study describes itself and can be refitted or resumed later.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from carsearch.exceptions import ConfigError

Metric = Literal["auto", "log_loss", "accuracy", "macro_f1", "rmse", "mae", "r2"]
Task = Literal["auto", "classification", "regression"]
Pruner = Literal["successive_halving", "hyperband", "median", "none"]
Split = Literal["stratified", "ordered"]
ClassWeight = Literal["none", "balanced", "search"]
Decision = Literal["tuned", "argmax"]


class ReadOptions(TypedDict, total=False):
    """How a file is read into a table: the keyword options of
    :func:`~carsearch.data.read.read_table`, as a run passes them on."""

    header: bool
    columns: Sequence[str] | None
    numeric: Sequence[str]
    categorical: Sequence[str]
    task: str


#: The metrics of each task, the first one its default.
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("log_loss", "accuracy", "macro_f1"),
    "regression": ("rmse", "mae", "r2"),
}
METRICS: tuple[str, ...] = ("auto", *TASK_METRICS["classification"], *TASK_METRICS["regression"])
TASKS: tuple[str, ...] = ("auto", "classification", "regression")
#: Metrics where lower is better; every other one is maximized.
MINIMIZED = frozenset({"log_loss", "rmse", "mae"})
#: Best trials a post-hoc ensemble is selected from (``ensemble``; ``None``: no ensemble).
DEFAULT_ENSEMBLE = 20
PRUNERS: tuple[str, ...] = ("successive_halving", "hyperband", "median", "none")
SPLITS: tuple[str, ...] = ("stratified", "ordered")
CLASS_WEIGHT_CHOICES: tuple[str, ...] = ("none", "balanced", "search")
#: A classifier's decision: per-class weights tuned on validation, or plain argmax.
DECISIONS: tuple[str, ...] = ("tuned", "argmax")
DEFAULT_STORAGE = "sqlite:///studies/carsearch.db"
#: Fields given as lists in JSON and kept as tuples.
_TUPLES = ("columns", "numeric", "categorical", "optimizers", "embedding_rules", "numeric_encoders")


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """Everything a search run needs, validated once.

    Example:
        >>> from carsearch import RunConfig
        >>> RunConfig(n_trials=5, seed=1).for_task("classification").metric
        'log_loss'
    """

    data: str | None = None
    target: str | None = None
    header: bool = True
    columns: tuple[str, ...] | None = None
    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    min_category_count: int = 3
    class_weight: ClassWeight = "none"
    dataset: str = "car_evaluation"
    n_trials: int = 100
    timeout: float | None = None
    time_limit: float | None = None
    seed: int = 0
    split: Split = "stratified"
    val_fraction: float = 0.16
    test_fraction: float = 0.20
    storage: str = DEFAULT_STORAGE
    study_name: str | None = None
    pruner: Pruner = "successive_halving"
    task: Task = "auto"
    metric: Metric = "auto"
    device: str = "auto"
    max_epochs: int = 40
    patience: int = 5
    model: str = "mlp"
    optimizers: tuple[str, ...] = ("sgd", "adam", "rmsprop")
    embedding_rules: tuple[str, ...] = ("textbook", "fastai", "fixed")
    numeric_encoders: tuple[str, ...] = ("standard", "quantile", "ple", "periodic")
    refit_seeds: int | None = None
    ensemble: int | None = DEFAULT_ENSEMBLE
    decision: Decision = "tuned"
    threads: int = 1
    jobs: int = 1
    trial_timeout: float | None = None
    live_writes: bool = False
    out: str | None = None
    tensorboard: str | None = None

    def __post_init__(self) -> None:
        _check_choice("metric", self.metric, METRICS)
        _check_choice("task", self.task, TASKS)
        if self.task != "auto" and self.metric not in ("auto", *TASK_METRICS[self.task]):
            raise ConfigError(
                f"metric {self.metric!r} does not score a {self.task}; use one of "
                f"{', '.join(TASK_METRICS[self.task])}"
            )
        _check_choice("pruner", self.pruner, PRUNERS)
        _check_choice("split", self.split, SPLITS)
        _check_choice("class_weight", self.class_weight, CLASS_WEIGHT_CHOICES)
        _check_choice("decision", self.decision, DECISIONS)
        counts = ("n_trials", "max_epochs", "patience", "refit_seeds", "ensemble", "threads")
        for name in (*counts, "jobs", "min_category_count"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be at least 1, got {value}")
        if not all(self.models) or len(set(self.models)) < len(self.models):
            raise ConfigError(f"model must name distinct model plugins, got {self.model!r}")
        for name in ("timeout", "trial_timeout", "time_limit"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"{name} must be positive seconds, got {value}")
        if not (0 < self.val_fraction < 1 and 0 < self.test_fraction < 1):
            raise ConfigError("val_fraction and test_fraction must lie strictly between 0 and 1")
        if self.val_fraction + self.test_fraction >= 0.9:
            raise ConfigError(
                f"val_fraction + test_fraction must leave at least 10% for training, got "
                f"{self.val_fraction} + {self.test_fraction}"
            )
        for name in ("optimizers", "embedding_rules", "numeric_encoders"):
            if not getattr(self, name):
                raise ConfigError(f"{name} must name at least one plugin")
        if self.columns is not None and self.header:
            raise ConfigError(
                "columns names the columns of a file without a header: add --no-header"
            )
        # Accept lists from JSON or callers, but keep the record hashable and frozen.
        for name in _TUPLES:
            value = getattr(self, name)
            object.__setattr__(self, name, None if value is None else tuple(value))

    def for_task(self, task: str) -> RunConfig:
        """This configuration for a table of ``task``: ``auto`` task and metric made definite.

        Raises:
            ConfigError: the metric does not score that task (``--metric rmse`` on classes).
        """
        metric = TASK_METRICS[task][0] if self.metric == "auto" else self.metric
        return self.replace(task=task, metric=metric)

    @property
    def read_options(self) -> ReadOptions:
        """The options :func:`~carsearch.data.read.read_table` reads ``data`` with."""
        return ReadOptions(
            header=self.header,
            columns=self.columns,
            numeric=self.numeric,
            categorical=self.categorical,
            task=self.task,
        )

    @property
    def models(self) -> tuple[str, ...]:
        """The model families searched: ``model`` is one name, or several comma-separated."""
        return tuple(name.strip() for name in self.model.split(","))

    @property
    def metric_direction(self) -> Literal["minimize", "maximize"]:
        """The direction Optuna optimises :attr:`metric` in."""
        return "minimize" if self.metric in MINIMIZED else "maximize"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, the form stored on the study."""
        record = dataclasses.asdict(self)
        for name in _TUPLES:
            record[name] = None if record[name] is None else list(record[name])
        return record

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> RunConfig:
        """Rebuild a configuration stored by :meth:`to_dict`, ignoring unknown keys."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in record.items() if k in known})

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with ``changes`` applied and validated."""
        return dataclasses.replace(self, **changes)


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
