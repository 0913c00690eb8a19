"""One run at a time per build directory.

Two runs sharing ``build/`` would share the warehouse, the landed files and the exchange: the
loser died on DuckDB's file lock, published rows took the other run's ``run_id``, a feedback file
got the other run's rows. ``tongban run`` therefore takes an exclusive lock on
``<build>/run.lock`` before it reads anything. The lock is the operating system's (``filelock``:
``flock``), so it is released when the holding process ends, however it ends; the holder's pid,
host and start time are written beside it (``run.lock.json``) only to name it to a second run —
after a crash that file may be stale, the lock itself never is.

Under a real Airflow scheduler (LocalExecutor, or CeleryExecutor workers on several machines
sharing the build directory: docs/scale-out.md) each task runs in a process of its own and no
process lives for the whole run. The DAG's ``max_active_runs=1`` (kept in the metadata DB) keeps
its runs apart; against ``tongban run`` and ``exchange rollback`` a scheduled run *claims* the
build directory: its first task writes ``run.claim.json`` (the DAG run's id) under the lock, every
later task checks under the lock that the claim is still its run's, the last task (and a task's
final failure) removes it. :func:`run_lock` refuses while another run's claim stands, so a
``tongban run`` on another machine cannot slip in between two tasks. The lock file and the claim
live in the build directory, so every worker must see the same one: a shared filesystem whose
locks reach every client (NFSv4, CephFS, EFS: ``flock`` there is a whole-file POSIX lock).
A claim older than :data:`CLAIM_STALE_AFTER` (a worker died and no callback ran) no longer counts.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from filelock import FileLock, Timeout

LOCK_FILE = "run.lock"
HOLDER_FILE = "run.lock.json"
CLAIM_FILE = "run.claim.json"
#: a scheduled run's claim older than this no longer keeps ``tongban run`` out
CLAIM_STALE_AFTER = timedelta(hours=12)
#: seconds a scheduled task waits for another task's short hold of the lock
CLAIM_WAIT = 120.0
#: the build directories whose lock this process holds for a whole run (``tongban run``): the
#: in-process DAG's tasks need no claim there. Per process, like the lock itself.
_held: set[Path] = set()


class RunBusyError(RuntimeError):
    """Another run holds the build directory's lock."""

    exit_code = 4


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def holder(build_dir: Path) -> dict:
    """Who holds (or last held) the lock: {pid, host, started_at}; {} when unknown."""
    return _read_json(Path(build_dir) / HOLDER_FILE)


def _describe(info: dict) -> str:
    if not info:
        return "another process"
    return f"pid {info.get('pid')} on {info.get('host')}, started {info.get('started_at')}"


def holds(build_dir: Path) -> bool:
    """Whether this process holds the build directory's lock for a whole run (``tongban run``)."""
    return Path(build_dir).resolve() in _held


def claim(build_dir: Path) -> dict:
    """The standing claim of a scheduled run: {run, since}; {} when none (or unreadable)."""
    return _read_json(Path(build_dir) / CLAIM_FILE)


def _live(info: dict) -> bool:
    try:
        return datetime.now(UTC) - datetime.fromisoformat(info["since"]) < CLAIM_STALE_AFTER
    except (KeyError, TypeError, ValueError):
        return False


def _write_json(path: Path, info: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(info), encoding="utf-8")
    os.replace(tmp, path)


@contextmanager
def run_lock(build_dir: Path, *, wait: float | None = None) -> Iterator[None]:
    """Hold the build directory's run lock for the body (a whole run, or a rollback). ``wait``:
    seconds to wait for another run to finish (None or 0: fail at once). Raises
    :class:`RunBusyError` naming the holder, or the scheduled run whose claim stands."""
    build_dir = Path(build_dir).resolve()
    with _locked(build_dir, wait):
        standing = claim(build_dir)
        if standing and _live(standing):
            raise RunBusyError(
                f"a scheduled run ({standing.get('run')}, since {standing.get('since')}) has claimed {build_dir}; "
                f"wait for it to finish, or, if Airflow shows it is over, delete {build_dir / CLAIM_FILE}")
        _held.add(build_dir)
        try:
            yield
        finally:
            _held.discard(build_dir)


@contextmanager
def task_claim(build_dir: Path, run: str, *, first: bool = False, last: bool = False) -> Iterator[None]:
    """One task of the scheduled run ``run`` (``dag_id/run_id``): the first takes the claim (over
    any earlier run's: with ``max_active_runs=1`` that run is over), a later one checks that the
    claim is still its run's, the last removes it after its body. The lock is held only for these
    checks, not for the body: mapped intakes run side by side. Inside ``tongban run`` (this process
    holds the lock for the whole run) nothing is claimed."""
    build_dir = Path(build_dir).resolve()
    if holds(build_dir):
        yield
        return
    with _locked(build_dir, CLAIM_WAIT):
        standing = claim(build_dir)
        if first:
            _write_json(build_dir / CLAIM_FILE, {"run": run, "since": datetime.now(UTC).isoformat(timespec="seconds")})
        elif standing.get("run") != run:
            raise RunBusyError(f"{build_dir} is not claimed by this run ({run}) but by "
                               f"{standing.get('run') or 'nobody'}: another run came in between its tasks")
    yield
    if last:
        release_claim(build_dir, run)


def release_claim(build_dir: Path, run: str) -> bool:
    """Remove ``run``'s claim (its last task is done, or a task failed for good); True if it stood."""
    build_dir = Path(build_dir).resolve()
    if holds(build_dir):  # inside `tongban run`: nothing was claimed
        return False
    with _locked(build_dir, CLAIM_WAIT):
        if claim(build_dir).get("run") != run:
            return False
        (build_dir / CLAIM_FILE).unlink(missing_ok=True)
        return True


@contextmanager
def _locked(build_dir: Path, wait: float | None) -> Iterator[None]:
    """The operating system's lock on ``<build>/run.lock`` for the body, naming its holder."""
    build_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(build_dir / LOCK_FILE))
    try:
        lock.acquire(timeout=wait if wait else 0)
    except Timeout:
        waited = f" after waiting {wait:g} s" if wait else ""
        raise RunBusyError(
            f"another tongban run holds {build_dir / LOCK_FILE}{waited}: {_describe(holder(build_dir))}; "
            "wait for it to finish, or run again with --wait SECONDS") from None
    try:
        _write_json(build_dir / HOLDER_FILE, {"pid": os.getpid(), "host": socket.gethostname(),
                                              "started_at": datetime.now(UTC).isoformat(timespec="seconds")})
        yield
    finally:
        lock.release()
