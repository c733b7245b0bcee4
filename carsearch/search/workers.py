"""``--jobs N``: worker processes on this machine, each running the trial loop.

:func:`run_workers` starts ``config.jobs`` spawned processes on this machine: each gets
``min(threads, cores // jobs)`` torch threads and, with G GPUs, worker ``i`` gets
``cuda:(i mod G)``. Only the parent refits and exports.

A worker stops on SIGTERM as on Ctrl-C: its running trial is failed, its finished ones are
kept. The parent, interrupted by either, passes SIGTERM on to its workers (a terminal's
Ctrl-C reaches them too, a ``kill`` of the parent does not) and waits for them.

A worker also dies with its parent (``kill -9``, an out-of-memory kill): on Linux the kernel
sends it SIGTERM (``PR_SET_PDEATHSIG``), and everywhere it notices at its next epoch that
its parent changed (:func:`carsearch.search.stop.watch_parent`). Its running trial is
failed, so the next run of the same command retries it, and it exits without a word: there
is no parent left to report to.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from types import FrameType

import optuna
import torch
from sqlalchemy.engine import make_url

from carsearch.config import RunConfig
from carsearch.data.prepare import Prepared
from carsearch.exceptions import CarsearchError, ConfigError
from carsearch.search import stop
from carsearch.search.objective import make_objective
from carsearch.search.study import make_pruner, make_sampler
from carsearch.search.trials import Callback, n_finished, run_trials
from carsearch.storage.open import make_storage
from carsearch.storage.seam import trial_storage
from carsearch.storage.sqlite import sqlite_path
from carsearch.storage.urls import is_server
from carsearch.training.device import resolve_device, set_threads
from carsearch.urls import shown_url

logger = logging.getLogger("carsearch")

#: The signals that stop a search: Ctrl-C, and what SLURM, Kubernetes and systemd send.
_STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})
#: Linux's ``prctl`` option: the signal a process gets when the thread that started it ends.
_PR_SET_PDEATHSIG = 1


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


@dataclass(frozen=True)
class WorkerSpec:
    """What one worker process needs (pickled to it): its place, its parent's process id,
    its device, its threads."""

    index: int
    parent: int
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
            parent=os.getpid(),
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
            f"database server; got {shown_url(config.storage)}"
        )
    specs = worker_specs(config, prepared, study.study_name, callbacks)
    context = multiprocessing.get_context("spawn")  # fork would copy torch and CUDA state
    pipes = [context.Pipe(duplex=False) for _ in specs]
    processes = [
        context.Process(target=_worker_main, args=(spec, send), name=f"carsearch-{spec.index}")
        for spec, (_, send) in zip(specs, pipes, strict=True)
    ]
    started: list[BaseProcess] = []
    try:
        with _signals_deferred():
            for process in processes:
                process.start()
                started.append(process)
        for _, send in pipes:
            send.close()  # the parent only reads
        logger.info("%d workers started, %d torch threads each", len(specs), specs[0].threads)
        for process in processes:
            process.join()
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (see carsearch.cli)
        _stop(started)
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
        storage=trial_storage(storage, live_writes=config.live_writes),
        sampler=make_sampler(config, n_existing, worker=spec.index + 1),
        pruner=make_pruner(config),
    )
    device = resolve_device(spec.device)
    objective = make_objective(config, spec.prepared, device)
    run_trials(study, objective, config, callbacks=spec.callbacks)


def _worker_main(spec: WorkerSpec, send: Connection) -> None:
    """A worker's entry point: sends ``(None, None)``, or its error and traceback."""
    received: list[int] = []
    try:
        _interrupt_once(received)
        _stop_with_parent(spec.parent)
        run_worker(spec)
    except BaseException as error:
        if stop.orphaned():
            message = "its parent died"
        elif received and isinstance(error, KeyboardInterrupt):
            message = f"killed by {signal.Signals(received[0]).name}"
        elif isinstance(error, CarsearchError):
            message = str(error)  # already a sentence for users
        else:
            message = f"{type(error).__name__}: {error}"
        # Short enough to fit the pipe's buffer, so sending never waits for the parent.
        _send(send, (message[:2000], traceback.format_exc()[-8000:]))
        raise SystemExit(1) from None
    _send(send, (None, None))


def _send(send: Connection, report: tuple[str | None, str | None]) -> None:
    """Send ``report`` to the parent, unless it is dead: then nobody is left to tell."""
    try:
        send.send(report)
    except OSError:  # BrokenPipeError: the parent was killed
        if not stop.orphaned():
            raise


def _stop_with_parent(parent: int) -> None:
    """Stop this worker when process ``parent`` dies: at once by SIGTERM on Linux (the
    parent's thread that started it stays in :func:`run_workers` until the workers end), and
    on every system at the next epoch, when :func:`stop.raise_if_asked` sees a new parent."""
    stop.watch_parent(parent)
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    except (OSError, AttributeError) as error:
        logger.debug("no death signal from the parent (the epoch check remains): %s", error)


@contextmanager
def _signals_deferred() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until the workers have started: a parent interrupted while it
    sends a worker its data leaves a half-started process that prints a traceback."""
    if threading.current_thread() is not threading.main_thread():
        yield  # handlers can only be set from the main thread
        return
    caught: list[int] = []
    previous = {
        each: signal.signal(each, lambda signum, _: caught.append(signum)) for each in _STOP_SIGNALS
    }
    try:
        yield
    finally:
        for each, handler in previous.items():
            signal.signal(each, signal.SIG_DFL if handler is None else handler)
        for signum in caught[:1]:
            signal.raise_signal(signum)


def _interrupt_once(received: list[int]) -> None:
    """Make SIGTERM, and Ctrl-C, raise KeyboardInterrupt in this worker (see
    :func:`carsearch.search.stop.interrupt`), recorded in ``received``: Optuna then fails the
    running trial. Signals after the first are ignored,
    so that a forwarded SIGTERM cannot cut that last write short."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        for each in (signal.SIGINT, signal.SIGTERM):
            signal.signal(each, signal.SIG_IGN)
        received.append(signum)
        stop.interrupt(signum, frame)

    signal.signal(signal.SIGTERM, interrupt)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, interrupt)


def _report(process: BaseProcess, receive: Connection) -> str | None:
    """What went wrong in a finished worker, or ``None``."""
    try:
        message, trace = receive.recv() if receive.poll() else (None, None)
    except EOFError:  # killed before it could say anything (SIGKILL): its pipe closed empty
        message, trace = None, None
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
    """After Ctrl-C or SIGTERM: SIGTERM to the workers, time to record their trials, then end
    those still running."""
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
            process.join()
