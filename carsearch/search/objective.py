"""The objective: sample a configuration, train it, report each epoch, return its best."""

from __future__ import annotations

import time
from collections.abc import Callable

import optuna
import torch

from carsearch.config import RunConfig
from carsearch.data.prepare import Prepared
from carsearch.ensemble import predictions
from carsearch.exceptions import TrainingError
from carsearch.models.network import build_network
from carsearch.search import stop
from carsearch.search.budget import TimeBudget
from carsearch.search.space import suggest
from carsearch.storage.seam import flush_trial
from carsearch.training.device import derive_seed, device_label, seed_everything
from carsearch.training.estimator import SearchFit, estimator
from carsearch.training.loop import EpochCallback, FitResult, Tensors, fit, predict
from carsearch.training.metrics import Scores
from carsearch.training.recipe import Recipe
from carsearch.training.tasks import Task
from carsearch.training.tensorboard import TrialCurves, open_curves, summary_writer_type

#: Trial user attribute: the epoch of the trial's best validation score (a refit trains this many).
BEST_EPOCH_ATTR = "best_epoch"
#: Trial user attribute: why a failed trial failed, in one line.
FAIL_REASON_ATTR = "fail_reason"


class Objective:
    """Sample a configuration on a trial, train it, report each epoch, return its best value.

    Built once per process: the splits are moved to the device here, not in every trial.
    With a ``budget`` (``--time-limit``), a trial still training at the search's deadline
    stops after its epoch, keeping its best epoch.
    """

    def __init__(
        self,
        config: RunConfig,
        prepared: Prepared,
        device: torch.device,
        budget: TimeBudget | None = None,
    ) -> None:
        config = config.for_task(prepared.table.task)
        self.config, self.prepared, self.device = config, prepared, device
        self.budget = budget
        self.encoded, self.rows = prepared.search, prepared.split.train
        self.train = Tensors.select(self.encoded, prepared.split.train, device)
        self.val = Tensors.select(self.encoded, prepared.split.val, device)
        self.kept_rows = predictions.kept_rows(
            len(prepared.split.val), self.encoded.schema.n_outputs, config.seed
        )
        self.kept = Tensors.select(self.encoded, prepared.split.val[self.kept_rows], device)
        self.label = device_label(device)
        if config.tensorboard is not None:
            summary_writer_type()  # a missing tensorboard fails the run now, not every trial

    def __call__(self, trial: optuna.Trial) -> float:
        with stop.immediate():  # a stop signal fails this trial, here rather than in tell()
            return self._run(trial)

    def _run(self, trial: optuna.Trial) -> float:
        config = self.config
        recipe = suggest(trial, config, self.encoded.schema, len(self.rows))
        seed = derive_seed(config.seed, trial.number)
        trial.set_user_attr("device", self.label)
        trial.set_user_attr("seed", seed)
        flush_trial(trial)  # stored before training: a dead worker's trial is retried with them
        seed_everything(seed)
        task = recipe.task(self.encoded, self.rows, self.device)
        deadline = None if self.budget is None else self.budget.search_deadline(trial.study, config)
        try:
            if estimator(recipe.model) is None:
                result = self._fit_network(trial, recipe, task, seed, deadline)
            else:
                result = self._fit_estimator(trial, recipe, task, seed, deadline)
        except TrainingError as error:
            trial.set_user_attr(FAIL_REASON_ATTR, str(error))
            raise
        assert result.best_scores is not None  # fits with validation always score
        trial.set_user_attr(BEST_EPOCH_ATTR, result.best_epoch)
        if deadline is not None and time.monotonic() >= deadline:
            trial.set_user_attr("time_limit_epoch", result.n_epochs)  # stopped there
        for key, value in result.best_scores.items():
            trial.set_user_attr(f"val_{key}", value)
        return result.best_scores[config.metric]

    def _fit_network(
        self, trial: optuna.Trial, recipe: Recipe, task: Task, seed: int, deadline: float | None
    ) -> FitResult:
        """Train the trial's network, keeping its best epoch's predictions (or, pruned, its
        last epoch's, as its value is)."""
        config = self.config
        model = build_network(recipe.spec(self.encoded, self.rows), self.encoded.schema)
        model = model.to(self.device)
        optimizer = recipe.build_optimizer(model)
        curves = open_curves(config.tensorboard, trial.number, model, self.train, task)
        try:
            result = fit(
                model,
                optimizer,
                self.train,
                self.val,
                task=task,
                batch_size=recipe.batch_size,
                max_epochs=config.max_epochs,
                seed=seed,
                metric=config.metric,
                scheduler=recipe.build_scheduler(optimizer, config.max_epochs),
                patience=config.patience,
                on_epoch=self._reporter(trial, curves),
                deadline=deadline,
            )
        except optuna.TrialPruned:
            self._keep(trial, predict(model, self.kept, task))
            raise
        except torch.cuda.OutOfMemoryError as error:  # = torch.OutOfMemoryError
            raise self._out_of_memory(trial, error) from error
        finally:
            if curves is not None:
                curves.close()
        self._keep(trial, predict(model, self.kept, task))  # fit left the best epoch's weights
        return result

    def _fit_estimator(
        self, trial: optuna.Trial, recipe: Recipe, task: Task, seed: int, deadline: float | None
    ) -> FitResult:
        """Train the trial's estimator, keeping its best (or, pruned, last) epoch's
        predictions, from the raw validation outputs its epochs were scored on."""
        config = self.config
        fitted = SearchFit(recipe.model, recipe.params, max_epochs=config.max_epochs)
        try:
            result = fitted.run(
                self.train,
                self.val,
                task=task,
                n_outputs=self.encoded.schema.n_outputs,
                seed=seed,
                metric=config.metric,
                patience=config.patience,
                on_epoch=self._reporter(trial, None),
                deadline=deadline,
            )
        except optuna.TrialPruned:
            if fitted.last_raw is not None:
                self._keep(trial, task.predict(torch.from_numpy(fitted.last_raw[self.kept_rows])))
            raise
        assert fitted.best_raw is not None  # a fit with validation scores each epoch
        self._keep(trial, task.predict(torch.from_numpy(fitted.best_raw[self.kept_rows])))
        return result

    def _reporter(self, trial: optuna.Trial, curves: TrialCurves | None) -> EpochCallback:
        """Each epoch: curves, report, prune, check the trial's time limit."""
        started, metric, limit = time.monotonic(), self.config.metric, self.config.trial_timeout

        def on_epoch(epoch: int, loss: float, scores: Scores) -> None:
            if curves is not None:
                curves.log(epoch, loss, scores)
            stop.raise_if_asked()  # a stop whose KeyboardInterrupt a finalizer swallowed
            trial.report(scores[metric], epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch}")
            check_deadline(started, limit, epoch)

        return on_epoch

    def _keep(self, trial: optuna.Trial, kept: torch.Tensor) -> None:
        """Store the predictions on the kept validation rows, for ensembles."""
        trial.set_user_attr(predictions.ATTR, predictions.encode(kept.float().cpu().numpy()))

    def _out_of_memory(self, trial: optuna.Trial, error: BaseException) -> TrainingError:
        """The error that fails ``trial`` instead of the whole search, its reason stored."""
        first_line = str(error).partition("\n")[0][:300]
        reason = f"out of memory on {self.label}: {first_line}"
        trial.set_user_attr(FAIL_REASON_ATTR, reason)
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        return TrainingError(reason)


def make_objective(
    config: RunConfig,
    prepared: Prepared,
    device: torch.device,
    budget: TimeBudget | None = None,
) -> Callable[[optuna.Trial], float]:
    """The objective of a search on ``prepared`` (see :class:`Objective`)."""
    return Objective(config, prepared, device, budget)


def check_deadline(started: float, limit: float | None, epoch: int) -> None:
    """End a trial that has run ``limit`` seconds since ``started`` (``time.monotonic()``).

    Raises:
        TrainingError: the limit has passed; it names the limit and the epoch.
    """
    if limit is not None and time.monotonic() - started > limit:
        raise TrainingError(f"trial ran past its {limit:g} s limit at epoch {epoch}")
