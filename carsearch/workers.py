"""Trials in parallel: the trial loop every process runs, and ``--jobs N`` worker processes.

``n_trials`` counts the study's finished trials, across every worker on every machine. Each
process runs :func:`run_trials`, which stops when the study holds them; the storage's trial
budget (:class:`carsearch.storage.CarsearchStorage`) refuses, in the transaction that would
start it, a trial beyond them, so racing workers cannot overshoot. A failed trial (a NaN
loss, ``--trial-timeout``, out of memory, a dead worker's) frees its place for another.

:func:`run_workers` starts ``config.jobs`` spawned processes on this machine: each gets
``min(threads, cores // jobs)`` torch threads and, with G GPUs, worker ``i`` gets
``cuda:(i mod G)``. Only the parent refits and exports.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.engine import make_url

from carsearch.config import RunConfig
from carsearch.device import resolve_device, set_threads
from carsearch.exceptions import CarsearchError, ConfigError, StudyError, TrainingError
from carsearch.prepare import Prepared
from carsearch.storage import BudgetReached, is_server, make_storage, sqlite_path
from carsearch.study import FINISHED, make_objective, make_pruner, make_sampler

logger = logging.getLogger("carsearch")

Objective = Callable[[optuna.Trial], float]
Callback = Callable[[optuna.Study, FrozenTrial], None]

#: A process starts no more trials after this many failed in a row: something is wrong.
MAX_FAILURES_IN_A_ROW = 5
#: Seconds between looks at a study whose last trials run elsewhere.
POLL_SECONDS = 2.0


def threads_per_worker(n_cores: int, n_jobs: int) -> int:
    """The CPU threads each of ``n_jobs`` workers may use without oversubscribing the cores."""
    return max(1, n_cores // n_jobs)


def assign_device(requested: str, index: int, n_gpus: int) -> str:
    """The device of worker ``index``: ``cuda:(index mod n_gpus)`` for ``auto`` or ``cuda``.

    Any other request (``cpu``, ``cuda:1``, ``mps``), and ``auto`` without GPUs, is kept.

    Example:
        >>> [assign_device("auto", i, 2) for i in range(3)]
        ['cuda:0', 'cuda:1', 'cuda:0']
    """
    if requested in ("auto", "cuda") and n_gpus > 0:
        return f"cuda:{index % n_gpus}"
    return requested


def available_cores() -> int:
    """The CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def gpu_count() -> int:
    """The CUDA GPUs this machine has."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def n_finished(study: optuna.Study) -> int:
    """The study's complete and pruned trials, whoever ran them."""
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def run_trials(
    study: optuna.Study,
    objective: Objective,
    config: RunConfig,
    *,
    progress: bool = False,
    callbacks: Sequence[Callback] = (),
) -> None:
    """Run trials until the study holds ``config.n_trials`` finished ones (or time is up).

    ``callbacks`` see each trial of this process once it ends. When the last trials run in
    other processes, waits for them: one may fail, or belong to a dead worker (failed by its
    stale heartbeat, then retried), and need a stand-in.

    Raises:
        StudyError: ``MAX_FAILURES_IN_A_ROW`` trials failed in a row and none ever completed.
    """
    if is_server(config.storage):
        study.sampler.reseed_rng()  # other machines may share the seed: sample apart
    stopper = _Stopper(config.n_trials)
    deadline = None if config.timeout is None else time.monotonic() + config.timeout
    while not stopper.gave_up and (missing := config.n_trials - n_finished(study)) > 0:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return
        try:
            study.optimize(
                objective,
                n_trials=missing,
                timeout=left,
                catch=(TrainingError,),
                callbacks=[*callbacks, stopper],
                show_progress_bar=progress,
            )
        except BudgetReached as full:
            if not full.heartbeat:
                return  # without heartbeats a dead worker's trial would be waited for forever
            time.sleep(POLL_SECONDS)
        except optuna.exceptions.UpdateFinishedTrialError as error:
            logger.warning("a trial here was failed elsewhere (a late heartbeat?): %s", error)
        progress = False
    if stopper.gave_up and not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        raise StudyError(
            f"no trial completed: {MAX_FAILURES_IN_A_ROW} failed in a row, the last because "
            f"{stopper.last_reason}"
        )


class _Stopper:
    """The ``study.optimize`` callback that ends this process's trials.

    Stops when the study holds its finished trials, or after too many failures in a row.
    """

    def __init__(self, n_trials: int) -> None:
        self.n_trials = n_trials
        self.failures_in_a_row = 0
        self.last_reason: str | None = None
        self.gave_up = False

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.state == TrialState.FAIL:
            self.failures_in_a_row += 1
            self.last_reason = trial.user_attrs.get("fail_reason", "an unknown error")
        else:
            self.failures_in_a_row = 0
        if self.failures_in_a_row >= MAX_FAILURES_IN_A_ROW:
            self.gave_up = True
            logger.warning(
                "%d trials failed in a row, the last because %s; starting no more here",
                self.failures_in_a_row,
                self.last_reason,
            )
            study.stop()
        elif n_finished(study) >= self.n_trials:
            study.stop()


@dataclass(frozen=True)
class WorkerSpec:
    """What one worker process needs (pickled to it): its place, its device, its threads."""

    index: int
    config: RunConfig
    prepared: Prepared
    study_name: str
    device: str
    threads: int
    log_level: int
    optuna_verbosity: int
    callbacks: tuple[Callback, ...] = ()


def worker_specs(
    config: RunConfig, prepared: Prepared, study_name: str, callbacks: Sequence[Callback] = ()
) -> list[WorkerSpec]:
    """One spec per worker: devices dealt round-robin over the GPUs, the cores shared out.

    ``callbacks`` must be picklable: module-level functions.
    """
    n_gpus = gpu_count() if config.device in ("auto", "cuda") else 0
    threads = min(config.threads, threads_per_worker(available_cores(), config.jobs))
    return [
        WorkerSpec(
            index=index,
            config=config,
            prepared=prepared,
            study_name=study_name,
            device=assign_device(config.device, index, n_gpus),
            threads=threads,
            log_level=logger.getEffectiveLevel(),
            optuna_verbosity=optuna.logging.get_verbosity(),
            callbacks=tuple(callbacks),
        )
        for index in range(config.jobs)
    ]


def run_workers(
    study: optuna.Study,
    config: RunConfig,
    prepared: Prepared,
    *,
    callbacks: Sequence[Callback] = (),
) -> None:
    """Run ``config.jobs`` worker processes on ``study`` until it holds its trials.

    ``callbacks`` (module-level functions) run in the workers after each of their trials.

    Raises:
        ConfigError: the storage is in-memory SQLite, which other processes cannot see.
        CarsearchError: a worker raised an error (its traceback is logged at debug level),
            or one died and the study is short of trials.
    """
    if not is_server(config.storage) and sqlite_path(make_url(config.storage)) is None:
        raise ConfigError(
            f"--jobs {config.jobs} needs a storage its workers can share, a SQLite file or a "
            f"database server; got {config.storage}"
        )
    specs = worker_specs(config, prepared, study.study_name, callbacks)
    context = multiprocessing.get_context("spawn")  # fork would copy torch and CUDA state
    pipes = [context.Pipe(duplex=False) for _ in specs]
    processes = [
        context.Process(target=_worker_main, args=(spec, send), name=f"carsearch-{spec.index}")
        for spec, (_, send) in zip(specs, pipes, strict=True)
    ]
    for process in processes:
        process.start()
    for _, send in pipes:
        send.close()  # the parent only reads
    logger.info("%d workers started, %d torch threads each", len(specs), specs[0].threads)
    try:
        for process in processes:
            process.join()
    except KeyboardInterrupt:
        _stop(processes)
        raise
    reports = [_report(p, receive) for p, (receive, _) in zip(processes, pipes, strict=True)]
    _raise_failures(study, config, reports)


def run_worker(spec: WorkerSpec) -> None:
    """The work of one worker process: open the study and run trials."""
    logging.basicConfig(
        level=spec.log_level,
        format=f"%(levelname)s %(name)s[worker {spec.index}]: %(message)s",
    )
    optuna.logging.set_verbosity(spec.optuna_verbosity)
    set_threads(spec.threads)
    config = spec.config
    storage = make_storage(config.storage, trial_budget=config.n_trials)
    study_id = storage.get_study_id_from_name(spec.study_name)
    n_existing = len(storage.get_all_trials(study_id, deepcopy=False))
    study = optuna.load_study(
        study_name=spec.study_name,
        storage=storage,
        sampler=make_sampler(config, n_existing, worker=spec.index + 1),
        pruner=make_pruner(config),
    )
    device = resolve_device(spec.device)
    objective = make_objective(config, spec.prepared, device)
    run_trials(study, objective, config, callbacks=spec.callbacks)


def _worker_main(spec: WorkerSpec, send: Connection) -> None:
    """A worker's entry point: sends ``(None, None)``, or its error and traceback."""
    try:
        run_worker(spec)
    except BaseException as error:
        # Short enough to fit the pipe's buffer, so sending never waits for the parent.
        send.send((f"{type(error).__name__}: {error}"[:2000], traceback.format_exc()[-8000:]))
        raise SystemExit(1) from None
    send.send((None, None))


def _report(process: BaseProcess, receive: Connection) -> str | None:
    """What went wrong in a finished worker, or ``None``."""
    if receive.poll():
        message, trace = receive.recv()
        if message is not None:
            logger.debug("%s failed:\n%s", process.name, trace)
        return message if isinstance(message, str) else None
    code = process.exitcode
    if code is None or code == 0:
        return None
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exited with status {code}"


def _raise_failures(study: optuna.Study, config: RunConfig, reports: list[str | None]) -> None:
    failed = [(index, report) for index, report in enumerate(reports) if report is not None]
    if not failed:
        return
    listed = "; ".join(f"worker {index}: {report}" for index, report in failed)
    died = all(report.startswith("killed by ") for _, report in failed)
    if died and n_finished(study) >= config.n_trials:
        logger.warning("the others finished the study, but %s", listed)
        return
    raise CarsearchError(f"{len(failed)} of {len(reports)} workers failed: {listed}")


def _stop(processes: Sequence[BaseProcess]) -> None:
    """After Ctrl-C (which the workers got too): let them record their trials, then end them."""
    for process in processes:
        process.join(timeout=10)
        if process.is_alive():
            process.terminate()
            process.join()
