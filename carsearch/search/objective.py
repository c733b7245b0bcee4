"""The objective: sample a configuration, train it, report each epoch, return its best."""

from __future__ import annotations

import time
from collections.abc import Callable

import optuna
import torch

from carsearch.config import RunConfig
from carsearch.data.prepare import Prepared
from carsearch.exceptions import TrainingError
from carsearch.inspect.tensorboard import open_curves, summary_writer_type
from carsearch.search.space import suggest
from carsearch.training.device import derive_seed, device_label, seed_everything
from carsearch.training.loop import Tensors, fit
from carsearch.training.metrics import Scores


def make_objective(
    config: RunConfig, prepared: Prepared, device: torch.device
) -> Callable[[optuna.Trial], float]:
    """The objective: sample a configuration, train it, report each epoch, return the best."""
    train = Tensors.select(prepared, prepared.split.train, device)
    val = Tensors.select(prepared, prepared.split.val, device)
    label = device_label(device)
    if config.tensorboard is not None:
        summary_writer_type()  # a missing tensorboard fails the run now, not every trial

    def objective(trial: optuna.Trial) -> float:
        recipe = suggest(trial, config, prepared.schema)
        seed = derive_seed(config.seed, trial.number)
        trial.set_user_attr("device", label)
        trial.set_user_attr("seed", seed)
        seed_everything(seed)
        model = recipe.build_model(prepared.schema).to(device)
        optimizer = recipe.build_optimizer(model)
        started = time.monotonic()
        curves = open_curves(config.tensorboard, trial.number, model, train)

        def on_epoch(epoch: int, loss: float, scores: Scores) -> None:
            if curves is not None:
                curves.log(epoch, loss, scores)
            trial.report(scores.get(config.metric), epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch}")
            check_deadline(started, config.trial_timeout, epoch)

        try:
            result = fit(
                model,
                optimizer,
                train,
                val,
                batch_size=recipe.batch_size,
                max_epochs=config.max_epochs,
                seed=seed,
                metric=config.metric,
                scheduler=recipe.build_scheduler(optimizer, config.max_epochs),
                patience=config.patience,
                on_epoch=on_epoch,
            )
        except TrainingError as error:
            trial.set_user_attr("fail_reason", str(error))
            raise
        except torch.cuda.OutOfMemoryError as error:  # = torch.OutOfMemoryError (torch >= 2.5)
            first_line = str(error).partition("\n")[0][:300]
            reason = f"out of memory on {label}: {first_line}"
            trial.set_user_attr("fail_reason", reason)
            if device.type == "cuda":
                torch.cuda.empty_cache()
            raise TrainingError(reason) from error
        finally:
            if curves is not None:
                curves.close()
        assert result.best_scores is not None  # fit with validation always scores
        trial.set_user_attr("best_epoch", result.best_epoch)
        for key, value in result.best_scores.as_dict().items():
            trial.set_user_attr(f"val_{key}", value)
        return result.best_scores.get(config.metric)

    return objective


def check_deadline(started: float, limit: float | None, epoch: int) -> None:
    """End a trial that has run ``limit`` seconds since ``started`` (``time.monotonic()``).

    Raises:
        TrainingError: the limit has passed; it names the limit and the epoch.
    """
    if limit is not None and time.monotonic() - started > limit:
        raise TrainingError(f"trial ran past its {limit:g} s limit at epoch {epoch}")
