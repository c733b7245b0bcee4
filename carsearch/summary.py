"""The result of a search, as ``run``, ``export``, ``best`` and ``--json`` show it.

One :class:`Summary` type and one formatter serve every command; a field a command does not
know (``best`` trains nothing, so it has no wall time) is ``None`` and is left out of the
text, but every key is always in the JSON form.
"""

from __future__ import annotations

import dataclasses
import shlex
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True)
class Summary:
    """A study's best trial and, when a refit was made or exported, its test scores.

    Example:
        >>> summary = Summary(study="cars", storage="sqlite:///s.db", best_trial=3,
        ...                   best_value=0.01, best_params={"optimizer": "adam"})
        >>> summary.to_dict()["best_trial"]
        3
    """

    study: str
    storage: str
    best_trial: int
    best_value: float
    best_params: dict[str, Any]
    best_epoch: int | None = None
    metric: str | None = None
    task: str | None = None
    n_trials: int | None = None
    n_complete: int | None = None
    n_pruned: int | None = None
    n_failed: int | None = None
    device: str | None = None
    wall_seconds: float | None = None
    #: Where the wall time went: ``prepare``, ``search``, ``refit``, ``export`` seconds.
    seconds: dict[str, float] | None = None
    refit_seeds: int | None = None
    test: dict[str, Any] | None = None
    bundle: str | None = None
    ensemble: dict[str, Any] | None = None
    #: The tuned class decision: ``weights`` per class and validation scores with and
    #: without them; ``None`` for plain argmax.
    decision: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: every field, ``None`` where not known."""
        return dataclasses.asdict(self)


def format_summary(summary: Summary) -> str:
    """The human-readable summary: one line per known fact, the parameters indented."""
    lines = [f"study      {summary.study}  ({summary.storage})"]
    if summary.task is not None:
        lines.append(f"task       {summary.task}")
    if summary.n_trials is not None:
        lines.append(
            f"trials     {summary.n_trials}: {summary.n_complete} complete, "
            f"{summary.n_pruned} pruned, {summary.n_failed} failed"
        )
    metric = f"validation {summary.metric}" if summary.metric else "value"
    epoch = f" at epoch {summary.best_epoch}" if summary.best_epoch is not None else ""
    lines.append(f"best       trial {summary.best_trial}, {metric} {summary.best_value:.4f}{epoch}")
    lines.append("params")
    lines.extend(f"    {key} = {_short(value)}" for key, value in summary.best_params.items())
    if summary.device is not None:
        lines.append(f"device     {summary.device}")
    if summary.wall_seconds is not None:
        lines.append(f"wall time  {summary.wall_seconds:.1f} s{_format_seconds(summary)}")
    if summary.ensemble is not None:
        lines.append(f"ensemble   {_format_ensemble(summary.ensemble)}")
    if summary.decision is not None:
        lines.append(f"decision   {_format_decision(summary.decision)}")
    if summary.test is not None:
        lines.append(f"test       {_format_test(summary.test, summary.refit_seeds)}")
    lines.append(f"bundle     {summary.bundle or _no_bundle(summary)}")
    return "\n".join(lines)


def format_next_steps(summary: Summary, *, tensorboard: str | None = None) -> str:
    """The commands that show the study: its dashboard, its report, its TensorBoard curves."""
    storage, study = shlex.quote(summary.storage), shlex.quote(summary.study)
    lines = [
        f"dashboard  carsearch dashboard --storage {storage}",
        f"report     carsearch report --study {study} --storage {storage}",
    ]
    if tensorboard is not None:
        lines.append(f"curves     tensorboard --logdir {shlex.quote(tensorboard)}")
    return "\n".join(lines)


def _format_test(test: dict[str, Any], refit_seeds: int | None) -> str:
    if "rmse" in test:
        scores = f"RMSE {test['rmse']:.5g}, MAE {test['mae']:.5g}, R2 {test['r2']:.4f}"
    else:
        scores = f"accuracy {test['accuracy']:.4f}, macro-F1 {test['macro_f1']:.4f}"
    if refit_seeds is None:
        return scores
    return f"{scores} (ensemble of {refit_seeds} refits on train+validation)"


def _short(value: Any) -> str:
    """A parameter as text: floats to 4 significant digits (``--json`` keeps them all)."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _format_ensemble(ensemble: dict[str, Any]) -> str:
    """Members with their weights, and the validation score against the best trial's."""
    members = ", ".join(f"trial {m['trial']} x{m['weight']:.2f}" for m in ensemble["members"])
    scores = ensemble["val_scores"]
    return (
        f"{members}; validation {ensemble['metric']} {ensemble['val_score']:.4f} "
        f"(best trial alone {scores[0]:.4f}; {ensemble['size']} of {len(scores)} additions)"
    )


def _format_decision(decision: dict[str, Any]) -> str:
    """Class weights, and validation macro-F1 and accuracy with them against argmax's."""
    weights = ", ".join(
        f"{name} x{weight:.3g}"
        for name, weight in zip(decision["classes"], decision["weights"], strict=True)
    )
    tuned, argmax = decision["val_tuned"], decision["val_argmax"]
    return (
        f"argmax of probabilities x weights ({weights}); validation macro-F1 "
        f"{tuned['macro_f1']:.4f}, accuracy {tuned['accuracy']:.4f} (argmax "
        f"{argmax['macro_f1']:.4f}, {argmax['accuracy']:.4f})"
    )


def _format_seconds(summary: Summary) -> str:
    if not summary.seconds:
        return ""
    return " (" + ", ".join(f"{k} {v:.1f} s" for k, v in summary.seconds.items()) + ")"


def _no_bundle(summary: Summary) -> str:
    return f"none yet (carsearch export --study {shlex.quote(summary.study)})"
