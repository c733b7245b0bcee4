"""The fault matrix: what each fault a search can meet does to the run and to its trials.

Real ``carsearch`` processes on a small generated table in a temporary folder, one fault
each (several at once: most of them wait rather than compute). Prints one Markdown row per
fault:

* **one-line error**: ``yes`` when the run ends as promised: no traceback, and besides
  carsearch's own progress and warning lines (``carsearch: ...``), exactly one ``error: ...``
  line (``terminated (SIGTERM): ...`` for SIGTERM), or a clean exit (status 0, nothing else
  said) where the fault is survivable. A kill -9 of the parent can print nothing; there
  ``yes`` means no worker printed a word and none was left running 60 s later.
* **trials lost**: finished trials stored before the fault that are gone or changed after
  it (and after the rerun), or finished work that was never made up;
* **trials total**: after a fault that interrupts a run, the same command is run again; the
  study's finished trials (complete + pruned) against ``--trials``, which must match exactly.

Run it from the repository root (it needs about 3 minutes of 2 cores)::

    PYTHONPATH=$PWD python bench/faults.py
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna
import pandas as pd

CLI = [sys.executable, "-m", "carsearch.cli"]
#: A few-second search: 3 epochs on a 240-row table.
FAST = ["--max-epochs", "3", "--patience", "2", "--refit-seeds", "1", "--device", "cpu"]
#: Trials of about a second on a 3000-row table, long enough for a signal to land in one.
SLOW = ["--max-epochs", "40", "--patience", "40", "--pruner", "none", "--refit-seeds", "1"]
SLOW += ["--device", "cpu"]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
FINISHED = ("COMPLETE", "PRUNED")
#: Seconds any one command may take before the bench calls it hung.
HUNG = 300
FULL_DISK = """
import os, resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
os.execv(sys.executable, [sys.executable, "-m", "carsearch.cli", *sys.argv[2:]])
"""
LOCKER = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(600)
"""


@dataclass(frozen=True)
class Row:
    """One fault's outcome."""

    fault: str
    one_line: str
    lost: str
    total: str
    seen: str


@dataclass(frozen=True)
class Done:
    """A finished command: its status, its stderr, its wall time."""

    code: int
    err: str
    seconds: float


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="carsearch-faults-") as folder:
        work = Path(folder)
        make_table(240).to_csv(work / "tiny.csv", index=False)
        make_table(3000).to_csv(work / "mid.csv", index=False)
        base = finished_study(work)
        faults = fault_list(work, base)
        with ThreadPoolExecutor(max_workers=4) as pool:  # two faults only wait
            futures = [pool.submit(run_fault, work, name, fault) for name, fault in faults]
            rows = [future.result() for future in futures]
    print("| fault | one-line error | trials lost | trials total | what happened |")
    print("|---|---|---:|---:|---|")
    for row in rows:
        print(f"| {row.fault} | {row.one_line} | {row.lost} | {row.total} | {row.seen} |")
    print(f"\n{time.perf_counter() - started:.0f} s in all")
    return 0


def fault_list(work: Path, base: Path) -> list[tuple[str, Callable[[Path], Row]]]:
    """The faults, the slow waiters first, each with the function that provokes it."""
    return [
        ("locked SQLite file: `run`", lambda f: locked(f, base, "run")),
        ("locked SQLite file: `best`", lambda f: locked(f, base, "best")),
        ("SIGKILL of one worker of `--jobs 2`", lambda f: kill_worker(f, work)),
        ("SIGKILL of the parent of `--jobs 2`", lambda f: kill_parent(f, work)),
        ("SIGTERM of a run", lambda f: sigterm(f, work)),
        ("dead server (PostgreSQL port, nothing listening)", lambda f: dead_server(f, work)),
        ("missing database (PostgreSQL)", lambda f: missing_database(f, work)),
        ("bad credentials (MariaDB root, wrong password)", lambda f: bad_credentials(f, work)),
        ("corrupted SQLite file: `run`", lambda f: corrupted(f, work, base, "run")),
        ("corrupted SQLite file: `best`", lambda f: corrupted(f, work, base, "best")),
        ("full disk (RLIMIT_FSIZE)", lambda f: full_disk(f, work, base)),
        ("concurrent first open (3 processes, fresh SQLite)", lambda f: first_open(f, work)),
    ]


def run_fault(work: Path, name: str, fault: Callable[[Path], Row]) -> Row:
    folder = work / uuid.uuid4().hex[:8]
    folder.mkdir()
    try:
        row = fault(folder)
    except Exception as error:  # the bench reports a broken fault rather than stopping
        row = Row("", "no", "?", "?", f"bench failed: {type(error).__name__}: {error}"[:200])
    return Row(name, row.one_line, row.lost, row.total, row.seen)


def make_table(n_rows: int, seed: int = 0) -> pd.DataFrame:
    """A learnable categorical table (tests/helpers.py's ``make_frame``)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "colour": rng.choice(["red", "green", "blue"], n_rows),
            "size": rng.choice(["s", "m", "l", "xl"], n_rows),
            "shape": rng.choice(["round", "square"], n_rows),
        }
    )
    big = frame["size"].isin(["l", "xl"])
    frame["label"] = np.where(
        big & (frame["colour"] == "red"), "yes", np.where(frame["shape"] == "round", "maybe", "no")
    )
    return frame


# --- running carsearch -------------------------------------------------------------------


def carsearch(folder: Path, args: list[str], prefix: list[str] | None = None) -> Done:
    """Run ``carsearch ARGS`` in ``folder`` and wait for it."""
    started = time.perf_counter()
    process = start(folder, args, prefix)
    return finish(process, started)


def start(folder: Path, args: list[str], prefix: list[str] | None = None) -> subprocess.Popen[str]:
    command = [*(prefix or CLI), *args]
    return subprocess.Popen(
        command, cwd=folder, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(process: subprocess.Popen[str], started: float) -> Done:
    try:
        _, err = process.communicate(timeout=HUNG)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
        err += f"\nHUNG: killed after {HUNG} s"
    return Done(process.returncode, err, time.perf_counter() - started)


def said(err: str) -> list[str]:
    """The stderr lines that are not carsearch's own log lines (parent or worker)."""
    return [
        line
        for line in err.splitlines()
        if line.strip() and not line.startswith("carsearch: ") and " carsearch[worker " not in line
    ]


def verdict(done: Done, *, first: str = "error: ") -> str:
    """``yes`` for one line starting ``first`` and a failure status, or a clean exit."""
    lines = said(done.err)
    if "Traceback" in done.err:
        return "no (traceback)"
    if done.code == 0:
        return "yes (clean exit)" if not lines else f"no ({len(lines)} stray lines)"
    if len(lines) == 1 and lines[0].startswith(first):
        return "yes"
    return f"no ({len(lines)} lines)"


def headline(done: Done, seconds: bool = False) -> str:
    """What a command said, in short: its status and last line (and its wall time)."""
    lines = said(done.err) or ["(nothing)"]
    line = re.sub(r"/(?:[^\s:/]+/)*carsearch-faults-[^/\s]+/(?:[0-9a-f]{8}/)?", ".../", lines[-1])
    line = line.replace("|", "/")
    line = line if len(line) <= 110 else line[:107] + "..."
    took = f", after {done.seconds:.0f} s" if seconds else ""
    return f"status {done.code}{took}: `{line}`"


# --- studies --------------------------------------------------------------------------------


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def records(path: Path) -> dict[int, tuple[object, ...]]:
    """The finished trials of study ``s`` in SQLite file ``path``: number -> what they hold."""
    try:
        study = optuna.load_study(study_name="s", storage=sqlite_url(path))
    except KeyError:
        return {}
    return {
        t.number: (t.state.name, t.params, t.values)
        for t in study.get_trials(deepcopy=False)
        if t.state.name in FINISHED
    }


def states(path: Path) -> list[str]:
    try:
        study = optuna.load_study(study_name="s", storage=sqlite_url(path))
    except Exception:  # not created yet, or being created
        return []
    return [t.state.name for t in study.get_trials(deepcopy=False)]


def n_lost(before: dict[int, tuple[object, ...]], after: dict[int, tuple[object, ...]]) -> int:
    return sum(after.get(number) != record for number, record in before.items())


def finished_study(work: Path) -> Path:
    """A study ``s`` of 2 finished trials in ``base.db``, its WAL folded into the file."""
    path = work / "base.db"
    args = ["run", "--data", str(work / "tiny.csv"), "--storage", sqlite_url(path)]
    done = carsearch(work, [*args, "--study", "s", "--trials", "2", *FAST])
    if done.code != 0:
        raise SystemExit(f"the base study failed:\n{done.err[-3000:]}")
    with closing(sqlite3.connect(path)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


def copy_of(base: Path, folder: Path) -> Path:
    path = folder / "s.db"
    shutil.copy(base, path)
    return path


def tiny_run(folder: Path, storage: str, n_trials: int) -> list[str]:
    data = str(folder.parent / "tiny.csv")
    return ["run", "--data", data, "--storage", storage, "--study", "s", "--trials"] + [
        str(n_trials),
        *FAST,
    ]


def slow_run(work: Path, path: Path, *extra: str) -> list[str]:
    data = str(work / "mid.csv")
    args = ["run", "--data", data, "--storage", sqlite_url(path), "--study", "s", "--trials", "4"]
    return [*args, *SLOW, *extra]


def resumed(
    folder: Path, args: list[str], path: Path, before: dict[int, tuple[object, ...]], done: Done
) -> Row:
    """The row of a fault that ``done`` ended in: unless it exited 0, ``args`` run again;
    then its trials lost and total, and what it said (and what the rerun said, if it failed).
    """
    note = headline(done, seconds=True)
    if done.code != 0:
        again = carsearch(folder, args)
        note += "" if again.code == 0 else f"; rerun {headline(again)}"
    after = records(path)
    wanted = int(args[args.index("--trials") + 1])
    return Row("", verdict(done), str(n_lost(before, after)), f"{len(after)}/{wanted}", note)


# --- the faults -----------------------------------------------------------------------------


def server_answers(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def opening_fault(folder: Path, url: str) -> Row:
    done = carsearch(folder, tiny_run(folder, url, 2))
    return Row("", verdict(done), "0", "-", headline(done))


def dead_server(folder: Path, work: Path) -> Row:
    return opening_fault(folder, f"postgresql://postgres@127.0.0.1:{free_port()}/test")


def missing_database(folder: Path, work: Path) -> Row:
    if not server_answers(5432):
        return Row("", "skipped", "-", "-", "no PostgreSQL on 127.0.0.1:5432")
    name = f"carsearch_faults_{uuid.uuid4().hex[:8]}"
    return opening_fault(folder, f"postgresql://postgres@127.0.0.1:5432/{name}")


def bad_credentials(folder: Path, work: Path) -> Row:
    if not server_answers(3306):
        return Row("", "skipped", "-", "-", "no MariaDB on 127.0.0.1:3306")
    return opening_fault(folder, "mysql://root:wrong@127.0.0.1:3306/test")


def locked(folder: Path, base: Path, command: str) -> Row:
    """Another process holds the file's write lock for good; carsearch's busy timeout is a
    fixed 60 s (no option shortens it), so this fault costs a minute of waiting."""
    path = copy_of(base, folder)
    before = records(path)
    locker = subprocess.Popen([sys.executable, "-c", LOCKER, str(path)], stdout=subprocess.PIPE)
    try:
        assert locker.stdout is not None and locker.stdout.readline().strip() == b"locked"
        if command == "run":
            args = tiny_run(folder, sqlite_url(path), 4)
        else:
            args = ["best", "--storage", sqlite_url(path), "--study", "s"]
        done = carsearch(folder, args)
    finally:
        locker.kill()
        locker.wait()
    if command == "best":
        return Row("", verdict(done), str(n_lost(before, records(path))), "-", headline(done, True))
    return resumed(folder, args, path, before, done)


def corrupt(path: Path) -> None:
    """Overwrite every page after the first (the schema) with random bytes."""
    with closing(sqlite3.connect(path)) as connection:
        page = int(connection.execute("PRAGMA page_size").fetchone()[0])
    data = bytearray(path.read_bytes())
    noise = random.Random(0).randbytes(len(data) - page)
    data[page:] = noise
    path.write_bytes(bytes(data))


def corrupted(folder: Path, work: Path, base: Path, command: str) -> Row:
    path = copy_of(base, folder)
    corrupt(path)
    if command == "run":
        args = tiny_run(folder, sqlite_url(path), 4)
    else:
        args = ["best", "--storage", sqlite_url(path), "--study", "s"]
    done = carsearch(folder, args)
    return Row("", verdict(done), "- (pages overwritten)", "-", headline(done))


def full_disk(folder: Path, work: Path, base: Path) -> Row:
    """Files may not grow past the study file's size plus 24 KiB: the WAL fills mid-run."""
    path = copy_of(base, folder)
    before = records(path)
    limit = path.stat().st_size + 24 * 1024
    args = tiny_run(folder, sqlite_url(path), 30)
    done = carsearch(folder, [str(limit), *args], prefix=[sys.executable, "-c", FULL_DISK])
    return resumed(folder, args, path, before, done)


def wait_for(path: Path, process: subprocess.Popen[str], n_running: int) -> None:
    """Until one trial has finished and ``n_running`` run."""
    deadline = time.monotonic() + HUNG
    while time.monotonic() < deadline and process.poll() is None:
        found = states(path)
        if found.count("RUNNING") >= n_running and sum(s in FINISHED for s in found) >= 1:
            time.sleep(0.1)  # into the running trials' training
            return
        time.sleep(0.2)
    raise RuntimeError("the run never had its trials running")


def sigterm(folder: Path, work: Path) -> Row:
    path = folder / "s.db"
    args = slow_run(work, path)
    process = start(folder, args)
    started = time.perf_counter()
    wait_for(path, process, 1)
    before = records(path)
    process.send_signal(signal.SIGTERM)
    done = finish(process, started)
    row = resumed(folder, args, path, before, done)
    ok = verdict(done, first="terminated (SIGTERM)")
    return Row("", ok, row.lost, row.total, row.seen)


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux's /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def is_worker(pid: int) -> bool:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"spawn_main" in command


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@dataclass
class Busy:
    """A ``--jobs 2`` run caught while both workers train, and what it had stored then."""

    path: Path
    args: list[str]
    process: subprocess.Popen[str]
    started: float
    before: dict[int, tuple[object, ...]]


def two_workers_busy(folder: Path, work: Path) -> Busy:
    path = folder / "s.db"
    args = slow_run(work, path, "--jobs", "2")
    process = start(folder, args)
    started = time.perf_counter()
    wait_for(path, process, 2)
    return Busy(path, args, process, started, records(path))


def kill_worker(folder: Path, work: Path) -> Row:
    """One worker killed mid-trial: its trial is failed by its stale heartbeat (60 s), then
    retried by the other worker."""
    busy = two_workers_busy(folder, work)
    worker = next(pid for pid in children(busy.process.pid) if is_worker(pid))
    os.kill(worker, signal.SIGKILL)
    done = finish(busy.process, busy.started)
    return resumed(folder, busy.args, busy.path, busy.before, done)


def kill_parent(folder: Path, work: Path) -> Row:
    busy = two_workers_busy(folder, work)
    path, args, process, started, before = (
        busy.path, busy.args, busy.process, busy.started, busy.before
    )  # fmt: skip
    orphans = children(process.pid)
    process.kill()
    done = finish(process, started)
    deadline = time.monotonic() + 60
    while (left := [pid for pid in orphans if alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    lines = said(done.err)
    clean = not left and not lines and "Traceback" not in done.err
    ok = "yes (silent)" if clean else f"no ({len(left)} left running, {len(lines)} lines)"
    row = resumed(folder, args, path, before, done)
    seen = f"{len(orphans)} children, {len(left)} alive 60 s after; {row.seen}"
    return Row("", ok, row.lost, row.total, seen)


def first_open(folder: Path, work: Path) -> Row:
    path = folder / "s.db"
    args = tiny_run(folder, sqlite_url(path), 3)
    started = time.perf_counter()
    processes = [start(folder, args) for _ in range(3)]
    results = [finish(process, started) for process in processes]
    failed = [done for done in results if done.code != 0]
    ok = [verdict(done) for done in results]
    one_line = "yes (clean exit)" if not failed and all(v.startswith("yes") for v in ok) else "no"
    seen = f"{3 - len(failed)} of 3 exited 0" + (f"; {headline(failed[0])}" if failed else "")
    return Row("", one_line, "0", f"{len(records(path))}/3", seen)


if __name__ == "__main__":
    sys.exit(main())
