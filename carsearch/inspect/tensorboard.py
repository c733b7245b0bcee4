"""Per-trial training curves for TensorBoard (the optional extra ``carsearch[tensorboard]``).

Each trial writes to a run folder of its own, ``DIR/trial-0007/``, so TensorBoard draws one
curve per trial under each tag: ``loss/train``, ``loss/validation``, ``accuracy/train`` and
``accuracy/validation``. View them with ``tensorboard --logdir DIR``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from carsearch.exceptions import ConfigError
from carsearch.training.loop import Tensors, evaluate
from carsearch.training.metrics import Scores

INSTALL_HINT = "pip install 'carsearch[tensorboard]'"
#: The scalar tags each trial writes, one point per epoch.
TAGS: tuple[str, ...] = ("loss/train", "loss/validation", "accuracy/train", "accuracy/validation")


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
    """Writes one trial's per-epoch training and validation loss and accuracy.

    Training accuracy is measured with the model in eval mode after each epoch, so it is
    comparable with the validation accuracy; the training loss is the epoch's running mean.

    Args:
        root: the TensorBoard log folder; this trial writes under ``trial_folder(root, n)``.
        trial_number: the Optuna trial's number.
        model: the model being trained, scored on ``train`` after each epoch.
        train: the training split.

    Example:
        >>> curves = TrialCurves("runs", 7, model, train)  # doctest: +SKIP
        >>> curves.log(1, 0.9, val_scores)  # doctest: +SKIP
        >>> curves.close()  # doctest: +SKIP
    """

    def __init__(
        self, root: str | Path, trial_number: int, model: nn.Module, train: Tensors
    ) -> None:
        self.folder = trial_folder(root, trial_number)
        self._writer = summary_writer_type()(log_dir=str(self.folder))
        self._model = model
        self._train = train

    def log(self, epoch: int, train_loss: float, val: Scores) -> None:
        """Write epoch ``epoch``'s points; ``val`` holds its validation scores."""
        train_scores = evaluate(self._model, self._train)
        values = (train_loss, val.log_loss, train_scores.accuracy, val.accuracy)
        for tag, value in zip(TAGS, values, strict=True):
            self._writer.add_scalar(tag, value, global_step=epoch)

    def close(self) -> None:
        """Flush the event file and close it."""
        self._writer.close()


def open_curves(
    root: str | None, trial_number: int, model: nn.Module, train: Tensors
) -> TrialCurves | None:
    """A trial's :class:`TrialCurves`, or ``None`` when ``root`` is ``None`` (curves off)."""
    return None if root is None else TrialCurves(root, trial_number, model, train)
