"""One run at a time per build directory.

Two runs sharing ``build/`` would share the warehouse, the landed files and the exchange: the
loser died on DuckDB's file lock, published rows took the other run's ``run_id``, a feedback file
got the other run's rows. ``tongban run`` therefore takes an exclusive lock on
``<build>/run.lock`` before it reads anything. The lock is the operating system's (``filelock``:
``flock``), so it is released when the holding process ends, however it ends; the holder's pid,
host and start time are written beside it (``run.lock.json``) only to name it to a second run —
after a crash that file may be stale, the lock itself never is.

Under a real Airflow scheduler each task runs in a process of its own and no process lives for
the whole run: there the DAG's ``max_active_runs=1`` keeps its runs apart, and ``tongban run``
(which holds this lock) must not be started beside a scheduled run on the same build directory.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock, Timeout

LOCK_FILE = "run.lock"
HOLDER_FILE = "run.lock.json"


class RunBusyError(RuntimeError):
    """Another run holds the build directory's lock."""

    exit_code = 4


def holder(build_dir: Path) -> dict:
    """Who holds (or last held) the lock: {pid, host, started_at}; {} when unknown."""
    try:
        return json.loads((Path(build_dir) / HOLDER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _describe(info: dict) -> str:
    if not info:
        return "another process"
    return f"pid {info.get('pid')} on {info.get('host')}, started {info.get('started_at')}"


@contextmanager
def run_lock(build_dir: Path, *, wait: float | None = None) -> Iterator[None]:
    """Hold the build directory's run lock for the body. ``wait``: seconds to wait for another run
    to finish (None or 0: fail at once). Raises :class:`RunBusyError` naming the holder."""
    build_dir = Path(build_dir)
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
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started_at": datetime.now(UTC).isoformat(timespec="seconds")}
        tmp = build_dir / f".{HOLDER_FILE}.{os.getpid()}"
        tmp.write_text(json.dumps(info), encoding="utf-8")
        os.replace(tmp, build_dir / HOLDER_FILE)
        yield
    finally:
        lock.release()
