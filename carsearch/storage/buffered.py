"""The storage hot path: a running trial's writes held in memory, written when they matter.

Plain Optuna writes every suggested parameter, every epoch's value and every attribute in a
transaction of its own, and reads the running trial back to check pruning: about 270 ms of
storage per trial here, more than the training. :class:`BufferedStorage` holds the trials
this process runs and writes each one's pending rows in a single transaction
(:func:`carsearch.storage._optuna_private.write_trial`) at the moments other processes need them:

* once its parameters are sampled (so a worker that dies mid-trial leaves a trial whose
  parameters are retried, as before);
* when it goes on past a rung that the pruner recorded (successive halving compares trials
  only at rungs; a trial it prunes there writes the rung with its end, an epoch sooner);
* when it finishes, with its state and value: every epoch's value is stored by then.

Reads of those trials come from memory, so a pruning check between rungs costs nothing, and
decides exactly what it would have decided from the database. The study's other trials are
read from the database at most once a second (:data:`SNAPSHOT_SECONDS`); this process's own
writes update that read at once, so a process alone on a study sees every trial as the
database holds it. A SIGKILL loses only the epochs of the running trial since its last
write; the trial itself is failed and retried as before.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Container, Sequence
from datetime import datetime
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.storages import BaseStorage
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from carsearch.storage._optuna_private import (
    FrozenStudy,
    HeartbeatHooks,
    heartbeat_stale_trial_ids,
    id_of,
    study_of_trial,
    write_trial,
)
from carsearch.storage.pending import Pending
from carsearch.storage.rdb import CarsearchStorage

#: Seconds between looks for dead workers' trials (at most one look per trial start before).
STALE_CHECK_SECONDS = 10.0
#: Seconds a read of the study's trials serves later reads. This process's writes update it,
#: so alone on a study (one worker) every read sees every trial; other processes' trials show
#: up this much later at most, well inside the time their own trials take.
SNAPSHOT_SECONDS = 1.0


class BufferedStorage(BaseStorage, HeartbeatHooks):
    """Optuna's storage for ``rdb``, with this process's running trials written in batches.

    Args:
        rdb: the database storage (a :class:`~carsearch.storage.rdb.CarsearchStorage`).
    """

    def __init__(self, rdb: CarsearchStorage) -> None:
        self.rdb = rdb
        self.backend: Any = optuna.storages.get_storage(rdb)  # Optuna's cache of finished trials
        self._running: dict[int, tuple[FrozenTrial, Pending]] = {}
        self._finished: dict[int, FrozenTrial] = {}
        self._stale_checked: dict[int, float] = {}
        self._snapshots: dict[int, tuple[float, dict[int, FrozenTrial]]] = {}
        self._study_of: dict[int, int] = {}

    # --- trials this process runs -------------------------------------------------------
    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        trial_id: int = self.backend.create_new_trial(study_id, template_trial)
        if template_trial is None:  # a trial that starts running here, now
            self._own(trial_id, study_id)
        else:
            self._snapshots.pop(study_id, None)  # a queued trial: read it with the next read
        return trial_id

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        if trial_id in self._running and state.is_finished():
            self._finish(trial_id, state, values)
            return True
        self._snapshots.clear()  # another process's trial changed: read it again
        started: bool = self.backend.set_trial_state_values(trial_id, state, values)
        if started and state == TrialState.RUNNING:  # a queued trial this process took
            self._own(trial_id, study_of_trial(self.rdb, trial_id))
        return started

    def set_trial_param(
        self,
        trial_id: int,
        param_name: str,
        param_value_internal: float,
        distribution: BaseDistribution,
    ) -> None:
        if trial_id not in self._running:
            self.backend.set_trial_param(trial_id, param_name, param_value_internal, distribution)
            return
        trial, pending = self._running[trial_id]
        pending.params.append((param_name, param_value_internal, distribution))
        trial.params[param_name] = distribution.to_external_repr(param_value_internal)
        trial.distributions[param_name] = distribution

    def set_trial_intermediate_value(
        self, trial_id: int, step: int, intermediate_value: float
    ) -> None:
        if trial_id not in self._running:
            self.backend.set_trial_intermediate_value(trial_id, step, intermediate_value)
            return
        trial, pending = self._running[trial_id]
        if pending.system_attrs:
            self.flush(trial_id)  # the trial goes on past a rung: other processes compare with it
        pending.values[step] = intermediate_value
        trial.intermediate_values[step] = intermediate_value

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        if (running := self._running.get(trial_id)) is None:
            self.backend.set_trial_user_attr(trial_id, key, value)
        else:  # (trial, pending): the trial as read here, the rows its next write adds
            running[1].user_attrs[key] = running[0].user_attrs[key] = value

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        if (running := self._running.get(trial_id)) is None:
            self.backend.set_trial_system_attr(trial_id, key, value)
        else:  # (trial, pending): the trial as read here, the rows its next write adds
            running[1].system_attrs[key] = running[0].system_attrs[key] = value

    def flush(self, trial_id: int) -> None:
        """Write a running trial's pending rows now, in one transaction."""
        if trial_id in self._running:
            pending = self._running[trial_id][1]
            write_trial(self.rdb, trial_id, pending)
            pending.clear()

    def drop_running(self) -> list[int]:
        """Forget this process's running trials and their unwritten rows; their ids.

        For a storage that stopped taking writes: reads then come from the database.
        """
        dropped = list(self._running)
        self._running.clear()
        self._snapshots.clear()
        return dropped

    def get_trial(self, trial_id: int) -> FrozenTrial:
        if trial_id in self._running:
            return copy.deepcopy(self._running[trial_id][0])
        if trial_id in self._finished:
            return copy.deepcopy(self._finished.pop(trial_id))
        trial: FrozenTrial = self.backend.get_trial(trial_id)
        return trial

    def get_trial_system_attrs(self, trial_id: int) -> dict[str, Any]:
        if trial_id in self._running:
            return dict(self._running[trial_id][0].system_attrs)
        attrs: dict[str, Any] = self.backend.get_trial_system_attrs(trial_id)
        return attrs

    def get_all_trials(
        self,
        study_id: int,
        deepcopy: bool = True,
        states: Container[TrialState] | None = None,
    ) -> list[FrozenTrial]:
        # A copy of a running trial, never the one this storage keeps writing to: a caller
        # holding the list must not see later writes (a pruner counts rungs in it).
        trials = [
            copy.deepcopy(self._running[id_of(t)][0]) if id_of(t) in self._running else t
            for t in self._read_trials(study_id)
        ]
        if states is not None:
            trials = [t for t in trials if t.state in states]
        return copy.deepcopy(trials) if deepcopy else trials

    def _read_trials(self, study_id: int) -> list[FrozenTrial]:
        """The study's trials from a read less than a second old, with this process's own."""
        now = time.monotonic()
        taken, trials = self._snapshots.get(study_id, (-SNAPSHOT_SECONDS, {}))
        if now - taken >= SNAPSHOT_SECONDS:
            read = self.backend.get_all_trials(study_id, deepcopy=False)
            trials = {id_of(trial): trial for trial in read}
            trials.update(self._mine(study_id))
            self._snapshots[study_id] = (now, trials)
        return sorted(trials.values(), key=lambda trial: trial.number)

    def _mine(self, study_id: int) -> dict[int, FrozenTrial]:
        return {
            trial_id: trial
            for trial_id, (trial, _) in self._running.items()
            if self._study_of.get(trial_id) == study_id
        }

    def _remember(self, study_id: int, trial: FrozenTrial) -> None:
        """Put this process's latest view of ``trial`` in the study's last read."""
        if study_id in self._snapshots:
            self._snapshots[study_id][1][id_of(trial)] = trial

    def _own(self, trial_id: int, study_id: int) -> None:
        trial: FrozenTrial = self.backend.get_trial(trial_id)
        self._running[trial_id] = (trial, Pending())
        self._study_of[trial_id] = study_id
        self._remember(study_id, trial)

    def _finish(self, trial_id: int, state: TrialState, values: Sequence[float] | None) -> None:
        trial, pending = self._running[trial_id]
        value = None if values is None else float(values[0])
        completed = datetime.now()
        write_trial(self.rdb, trial_id, pending, state=state, value=value, completed=completed)
        del self._running[trial_id]
        trial.state, trial.datetime_complete = state, completed
        trial.values = None if value is None else [value]
        self._finished[trial_id] = trial  # what the caller reads back at once
        self._remember(self._study_of.pop(trial_id), copy.deepcopy(trial))

    # --- heartbeats ---------------------------------------------------------------------
    def record_heartbeat(self, trial_id: int) -> None:
        running = self._running.get(trial_id)
        if running is not None and not running[0].params:
            running[1].heartbeat = True  # the first one: written with the trial's parameters
            return
        self.backend.record_heartbeat(trial_id)

    def stale_trial_ids(self, study_id: int) -> list[int]:
        # A trial becomes stale over a grace period of a minute: looking at every trial start
        # finds nothing sooner than looking every few seconds does.
        now = time.monotonic()
        if now - self._stale_checked.get(study_id, -STALE_CHECK_SECONDS) < STALE_CHECK_SECONDS:
            return []
        self._stale_checked[study_id] = now
        return heartbeat_stale_trial_ids(self.backend, study_id)

    def get_heartbeat_interval(self) -> int | None:
        interval: int | None = self.backend.get_heartbeat_interval()
        return interval

    def get_heartbeat_stale_trial_callback(
        self,
    ) -> Callable[[optuna.Study, FrozenTrial], None] | None:
        callback: Callable[[optuna.Study, FrozenTrial], None] | None = (
            self.backend.get_heartbeat_stale_trial_callback()
        )
        return callback

    # --- everything else: the wrapped storage -------------------------------------------
    def create_new_study(
        self, directions: Sequence[StudyDirection], study_name: str | None = None
    ) -> int:
        study_id: int = self.backend.create_new_study(directions, study_name)
        return study_id

    def delete_study(self, study_id: int) -> None:
        self.backend.delete_study(study_id)

    def set_study_user_attr(self, study_id: int, key: str, value: Any) -> None:
        self.backend.set_study_user_attr(study_id, key, value)

    def set_study_system_attr(self, study_id: int, key: str, value: Any) -> None:
        self.backend.set_study_system_attr(study_id, key, value)

    def get_study_id_from_name(self, study_name: str) -> int:
        study_id: int = self.backend.get_study_id_from_name(study_name)
        return study_id

    def get_study_name_from_id(self, study_id: int) -> str:
        name: str = self.backend.get_study_name_from_id(study_id)
        return name

    def get_study_directions(self, study_id: int) -> list[StudyDirection]:
        directions: list[StudyDirection] = self.backend.get_study_directions(study_id)
        return directions

    def get_study_user_attrs(self, study_id: int) -> dict[str, Any]:
        attrs: dict[str, Any] = self.backend.get_study_user_attrs(study_id)
        return attrs

    def get_study_system_attrs(self, study_id: int) -> dict[str, Any]:
        attrs: dict[str, Any] = self.backend.get_study_system_attrs(study_id)
        return attrs

    def get_all_studies(self) -> list[FrozenStudy]:
        studies: list[FrozenStudy] = self.backend.get_all_studies()
        return studies

    def get_trial_id_from_study_id_trial_number(self, study_id: int, trial_number: int) -> int:
        trial_id: int = self.backend.get_trial_id_from_study_id_trial_number(study_id, trial_number)
        return trial_id

    def remove_session(self) -> None:
        self.backend.remove_session()
