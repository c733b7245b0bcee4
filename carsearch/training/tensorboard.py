"""Per-trial training curves for TensorBoard (the optional extra ``carsearch[tensorboard]``).

Each trial writes to a run folder of its own, ``DIR/trial-0007/``, so TensorBoard draws one
curve per trial under each tag: ``loss/train`` (the epoch's training loss), then every score
on the training and the validation rows, ``log_loss/train``, ``log_loss/validation``,
``accuracy/train``... View them with ``tensorboard --logdir DIR``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from carsearch.exceptions import ConfigError
from carsearch.training.loop import Tensors, evaluate
from carsearch.training.metrics import Scores
from carsearch.training.tasks import Task

INSTALL_HINT = "pip install 'carsearch[tensorboard]'"
#: The tag of the training loss; scores are tagged ``<metric>/train`` and ``<metric>/validation``.
LOSS_TAG = "loss/train"


def summary_writer_type() -> Any:
    """``torch.utils.tensorboard.SummaryWriter``, imported only when curves are asked for.

    Raises:
        ConfigError: TensorBoard is not installed; the message says how to install it.
    """
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as error:
        raise ConfigError(
            f"--tensorboard needs the tensorboard package ({error}); install it: {INSTALL_HINT}"
        ) from None
    return SummaryWriter


def trial_folder(root: str | Path, trial_number: int) -> Path:
    """The run folder of one trial, e.g. ``root/trial-0007``."""
    return Path(root) / f"trial-{trial_number:04d}"


class TrialCurves:
    """Writes one trial's per-epoch training loss, and its scores on training and validation.

    Training scores are measured with the model in eval mode after each epoch, so they are
    comparable with the validation ones; the training loss is the epoch's running mean.

    Args:
        root: the TensorBoard log folder; this trial writes under ``trial_folder(root, n)``.
        trial_number: the Optuna trial's number.
        model: the model being trained, scored on ``train`` after each epoch.
        train: the training split.
        task: what the model predicts, which scores them.

    Example:
        >>> curves = TrialCurves("runs", 7, model, train)  # doctest: +SKIP
        >>> curves.log(1, 0.9, val_scores)  # doctest: +SKIP
        >>> curves.close()  # doctest: +SKIP
    """

    def __init__(
        self, root: str | Path, trial_number: int, model: nn.Module, train: Tensors, task: Task
    ) -> None:
        self.folder = trial_folder(root, trial_number)
        self._writer = summary_writer_type()(log_dir=str(self.folder))
        self._model, self._train, self._task = model, train, task

    def log(self, epoch: int, train_loss: float, val: Scores) -> None:
        """Write epoch ``epoch``'s points; ``val`` holds its validation scores."""
        self._writer.add_scalar(LOSS_TAG, train_loss, global_step=epoch)
        train_scores = evaluate(self._model, self._train, self._task)
        for split, scores in (("train", train_scores), ("validation", val)):
            for metric, value in scores.items():
                self._writer.add_scalar(f"{metric}/{split}", value, global_step=epoch)

    def close(self) -> None:
        """Flush the event file and close it."""
        self._writer.close()


def open_curves(
    root: str | None, trial_number: int, model: nn.Module, train: Tensors, task: Task
) -> TrialCurves | None:
    """A trial's :class:`TrialCurves`, or ``None`` when ``root`` is ``None`` (curves off)."""
    return None if root is None else TrialCurves(root, trial_number, model, train, task)
