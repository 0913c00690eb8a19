"""Intake, orchestrated: each delivery through tongban.steps.intake (read, check, land), skipped
when it is recognised by its sha256 (tongban.steps.incremental), and the deliveries of an
in-process run side by side in two lanes."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tongban.common.config import Settings, quiet_third_parties
from tongban.steps.harmonize import build_checked
from tongban.steps.incremental import record_intake, reusable_intake
from tongban.steps.intake.land import land
from tongban.steps.intake.readers import _SUFFIX_FORMATS
from tongban.steps.intake.staging import limit_threads
from tongban.steps.loaded import standards
from tongban.steps.results import Landed, Run, Source

#: threads for the intake of an in-process run (TONGBAN_INTAKE_WORKERS; 1 = one delivery after another)
INTAKE_WORKERS_ENV = "TONGBAN_INTAKE_WORKERS"
#: `tongban run` builds checked tables during intake (intake_all(check_early=)) unless this is 0
CHECK_EARLY_ENV = "TONGBAN_CHECK_EARLY"


def check_early_enabled() -> bool:
    return os.environ.get(CHECK_EARLY_ENV, "1").strip() != "0"


def intake(s: Settings, run: Run, source: Source) -> Landed:
    """One delivery. A delivery recognised by its sha256 (same parts, same mapping) is not read or
    landed again."""
    quiet_third_parties()
    std = standards(s)
    m = std.mapping(source.source_id, source.entity)
    entity = std.entities[m.entity]
    reused = reusable_intake(m, entity, inbox_dirs=s.inbox_dirs, raw_dir=s.raw_dir)
    if reused is not None:
        return Landed.from_xcom(reused)
    result = land(m, inbox_dirs=s.inbox_dirs, raw_dir=s.raw_dir, run_id=run.run_id, entity=entity).to_dict()
    record_intake(result, m, entity, raw_dir=s.raw_dir, run_id=run.run_id)
    return Landed.from_xcom(result)


def _reads_in_python(m) -> bool:
    """Whether intake reads this delivery in Python (XLSX), holding the interpreter, rather than in
    DuckDB, which works outside it. The format as the readers resolve it: declared, else by the
    file's suffix."""

    return (m.delivery.format or _SUFFIX_FORMATS.get(Path(m.delivery.file).suffix.lower())) == "xlsx"


def intake_all(s: Settings, run: Run, *, workers: int | None = None,
               on_done: Callable[[Source, float], None] | None = None, check_early: bool = False,
               on_checked: Callable[[list[str], float], None] | None = None) -> list[Landed]:
    """Every delivery's intake, results in ``run.sources`` order, as the DAG's mapped intake tasks
    would run them side by side. With two or more workers there are two lanes: the deliveries
    read in Python (XLSX) one after another in one thread, the deliveries DuckDB reads in the
    other. Two XLSX deliveries at once would only take turns on the interpreter and hold two
    sheets in memory; one lane each keeps both cores busy. ``on_done(source, seconds)`` is called
    as each finishes.

    ``check_early``: when the DuckDB lane is done while the XLSX lane still reads, it goes on to
    build its deliveries' checked tables (``build_checked``), as the DAG's per-delivery tasks
    would, instead of leaving its core idle; ``transform`` then finds them up to date by their
    fingerprints and does not build them again; ``on_checked(models, seconds)`` is called after."""
    if workers is None:
        workers = int(os.environ.get(INTAKE_WORKERS_ENV) or min(2, os.cpu_count() or 1))
    sources = run.sources

    def one(src: Source) -> Landed:
        t0 = time.perf_counter()
        result = intake(s, run, src)
        if on_done is not None:
            on_done(src, time.perf_counter() - t0)
        return result

    if workers <= 1 or len(sources) <= 1:
        return [one(src) for src in sources]
    std = standards(s)
    python_lane = [i for i, src in enumerate(sources) if _reads_in_python(std.mapping(src.source_id, src.entity))]
    duckdb_lane = [i for i in range(len(sources)) if i not in python_lane]
    lanes = _Lanes(s, run, one, check_early=check_early, on_checked=on_checked, results=[None] * len(sources))
    if python_lane:
        lanes.python_running.set()
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="tongban-intake") as pool:
        futures = [pool.submit(lanes.run, idx, is_python) for idx, is_python in
                   ((python_lane, True), (duckdb_lane, False)) if idx]
        for f in futures:
            f.result()  # the first error, after both lanes stopped
    return [r for r in lanes.results if r is not None]


class _Lanes:
    """While the XLSX lane runs, DuckDB's lane keeps to the other cores (the XLSX reader's thread
    holds one core; DuckDB's threads competing for it would slow the longer lane down)."""

    def __init__(self, s: Settings, run: Run, one: Callable[[Source], Landed], *, check_early: bool,
                 on_checked, results: list[Landed | None]):
        self.s, self.run_, self.one, self.results = s, run, one, results
        self.check_early, self.on_checked = check_early, on_checked
        self.python_running, self.python_done = threading.Event(), threading.Event()
        self.spare = max(1, (os.cpu_count() or 1) - 1)

    def run(self, indices: list[int], is_python: bool) -> None:
        if not is_python:
            limit_threads(lambda: self.spare if self.python_running.is_set() else None)
        try:
            for i in indices:
                self.results[i] = self.one(self.run_.sources[i])
        finally:
            if is_python:
                self.python_running.clear()
                self.python_done.set()
            else:
                limit_threads(None)
        if self.check_early and not is_python and self.python_running.is_set():
            t0 = time.perf_counter()
            built = build_checked(self.s, self.run_, [self.results[i] for i in indices],
                                  spare_until=self.python_done)
            if self.on_checked is not None:
                self.on_checked(built, time.perf_counter() - t0)
