"""The walk, step by step: what the Airflow DAG's tasks and `tongban run` call.

Each step's work lives in its room under tongban/steps/ and takes and returns typed results
(tongban.steps.results). This module is the boundary where they cross between tasks: every
argument and result here is the plain JSON dict of a result (``to_xcom`` / ``from_xcom``), as
XCom carries it. A step that fails writes what failed to ``build/runs/last-failure.json`` for
`tongban run` to name. The data dictionary is published from here: its coverage is the
committee's (tongban.committee), a layer above the steps.
"""

from __future__ import annotations

import functools
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from tongban.committee.coverage import coverage
from tongban.common.config import Settings, settings
from tongban.standards.targets.dictionary import build_dictionary, write_dictionary
from tongban.steps import conserve, harmonize, spark_engine, walk_intake
from tongban.steps import feedback as feedback_step
from tongban.steps import gate as gate_step
from tongban.steps import publish as publish_step
from tongban.steps.conserve import ConservationError
from tongban.steps.harmonize import EARLY_MEMORY_LIMIT, early_memory_limit
from tongban.steps.harmonize import load_reference_tables as _load_reference  # tests/standards use it
from tongban.steps.loaded import standards
from tongban.steps.publish import CRASH_AT_ENV
from tongban.steps.results import (Conservation, Gated, Landed, Run, Source, Transformed, Walk,
                                   now)
from tongban.steps.start import UsageError, start
from tongban.steps.summary import HELD_STATUSES, held_back_deliveries, summarize
from tongban.steps.walk_intake import CHECK_EARLY_ENV, INTAKE_WORKERS_ENV, check_early_enabled

__all__ = ["CHECK_EARLY_ENV", "CRASH_AT_ENV", "EARLY_MEMORY_LIMIT", "HELD_STATUSES", "INTAKE_WORKERS_ENV",
           "LAST_FAILURE", "PROGRESS", "ConservationError", "_load_reference", "UsageError",
           "build_checked", "check_conservation", "check_early_enabled", "early_memory_limit", "feedback",
           "gate", "held_back_deliveries", "inbox_changes", "intake", "intake_all", "progress_event",
           "progress_path", "publish", "publish_dictionary", "run_in_process", "start_run", "summarize",
           "transform"]

#: the last step that failed, for `tongban run` to name when the DAG (whose tasks log their own
#: tracebacks) ends failed: {"run_id", "step", "error", "message", "at"}
LAST_FAILURE = "last-failure.json"


#: the run's progress, one JSON event a line, under the build directory: what `tongban run` shows
#: while the DAG (or the steps in process) runs. Counts and names only, never a delivery's values.
PROGRESS = Path("progress") / "events.jsonl"
#: past this size the next run starts the progress file anew (runs the scheduler starts append)
PROGRESS_KEPT_BYTES = 1 << 20


def progress_path(s: Settings | None = None) -> Path:
    return (s or settings()).build_dir / PROGRESS


def progress_event(event: str, **fields: Any) -> None:
    """Append one progress event (one ``write`` of one line with O_APPEND: whole lines even when
    the scheduler's intake tasks append side by side)."""
    path = progress_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"event": event, "t": round(time.time(), 3), **fields}, ensure_ascii=False) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)


def _delivery_events(result: Any) -> None:
    """One ``delivery`` event per landed delivery in an intake's result: who, status, rows read."""
    for d in result if isinstance(result, list) else [result]:
        progress_event("delivery", entity=d["entity"], source_id=d["source_id"],
                       province_code=d["province_code"], status=d["status"], rows=d.get("rows_delivered"))


def _step(*, per_delivery: bool = False, begins_run: bool = False):
    """A pipeline step that reports its progress (``started``/``done``/``failed`` events; a
    ``delivery`` event per delivery it landed) and, failing, writes what failed to
    ``build/runs/last-failure.json`` and re-raises. ``per_delivery``: one delivery's step (the DAG
    maps it), reported by its delivery event alone; ``begins_run``: the first step of a run (the
    progress file, grown past PROGRESS_KEPT_BYTES, starts anew; `tongban run` empties it first)."""

    def decorate(step):
        name = {"start_run": "start", "intake_all": "intake"}.get(step.__name__, step.__name__)

        @functools.wraps(step)
        def wrapper(*args, **kwargs):
            run = args[0] if args and isinstance(args[0], dict) else {}
            if begins_run:  # `tongban run` starts each run's file anew; under the scheduler keep it small
                path = progress_path()
                if path.exists() and path.stat().st_size > PROGRESS_KEPT_BYTES:
                    path.unlink(missing_ok=True)
            if not per_delivery:
                progress_event("step", step=name, state="started", run_id=run.get("run_id"))
            t0 = time.perf_counter()
            try:
                result = step(*args, **kwargs)
            except Exception as exc:
                runs = settings().build_dir / "runs"
                runs.mkdir(parents=True, exist_ok=True)
                (runs / LAST_FAILURE).write_text(json.dumps(
                    {"run_id": run.get("run_id"), "step": step.__name__, "error": type(exc).__name__,
                     "message": str(exc), "at": now()}, ensure_ascii=False), encoding="utf-8")
                progress_event("step", step=name, state="failed", error=type(exc).__name__,
                               seconds=round(time.perf_counter() - t0, 2))
                raise
            if name.startswith("intake"):
                _delivery_events(result)
            if not per_delivery:
                progress_event("step", step=name, state="done", seconds=round(time.perf_counter() - t0, 2),
                               run_id=(result.get("run_id") if begins_run else run.get("run_id")))
            return result

        return wrapper

    return decorate


#: a step of the walk (see :func:`_step`)
records_failure = _step()


def _landed(intakes: list[dict[str, Any]]) -> list[Landed]:
    return [Landed.from_xcom(i) for i in intakes]


@_step(begins_run=True)
def start_run(entities: list[str] | None = None) -> dict[str, Any]:
    """Check the standards, generate the run's dbt project from them (under build/), and name the run."""
    return start(settings(), entities).to_xcom()


@_step(per_delivery=True)
def intake(run: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
    return walk_intake.intake(settings(), Run.from_xcom(run), Source.from_xcom(source)).to_xcom()


@records_failure
def intake_all(run: dict[str, Any], *, workers: int | None = None, on_done=None,
               check_early: bool = False, on_checked=None) -> list[dict[str, Any]]:
    """Every delivery's intake, as the DAG's mapped intake tasks would run them side by side
    (tongban.steps.walk_intake.intake_all); ``on_done(source, seconds)`` gets the source as a dict."""
    done = None if on_done is None else (lambda src, seconds: on_done(src.to_xcom(), seconds))
    landed = walk_intake.intake_all(settings(), Run.from_xcom(run), workers=workers, on_done=done,
                                    check_early=check_early, on_checked=on_checked)
    return [i.to_xcom() for i in landed]


def build_checked(run: dict[str, Any], intakes: list[dict[str, Any]], *,
                  spare_until: threading.Event | None = None) -> list[str]:
    """The checked tables of these landed deliveries, now (tongban.steps.harmonize.build_checked)."""
    return harmonize.build_checked(settings(), Run.from_xcom(run), _landed(intakes), spare_until=spare_until)


@records_failure
def transform(run: dict[str, Any], intakes: list[dict[str, Any]]) -> dict[str, Any]:
    """The dbt build on the settings' engine: DuckDB (incremental) or Spark (everything, then back
    into the DuckDB warehouse: tongban.steps.spark_engine)."""
    s = settings()
    step = spark_engine.transform if s.engine == "spark" else harmonize.transform
    return step(s, Run.from_xcom(run), _landed(intakes)).to_xcom()


@records_failure
def gate(run: dict[str, Any], transformed: dict[str, Any]) -> dict[str, Any]:
    return gate_step.gate(settings(), Run.from_xcom(run), Transformed.from_xcom(transformed)).to_xcom()


@records_failure
def check_conservation(run: dict[str, Any], intakes: list[dict[str, Any]], transformed: dict[str, Any]) -> dict[str, Any]:
    """For every delivery: delivered = harmonized + quarantined, counted in the warehouse itself."""
    return conserve.check_conservation(settings(), _landed(intakes)).to_xcom()


@records_failure
def publish(run: dict[str, Any], intakes: list[dict[str, Any]], transformed: dict[str, Any],
            gate_result: dict[str, Any], conservation: dict[str, Any]) -> dict[str, Any]:
    """Publish the entities whose gate passed; record the run either way."""
    s = settings()
    walk = Walk(run=Run.from_xcom(run), intakes=_landed(intakes), transformed=Transformed.from_xcom(transformed),
                gated=Gated.from_xcom(gate_result), conservation=Conservation.from_xcom(conservation))

    def dictionary(out_dir: Path, generated_at: str, landed: list[Landed]) -> Path:
        return publish_dictionary(s, generated_at=generated_at, out_dir=out_dir,
                                  intakes=[i.to_xcom() for i in landed])

    return publish_step.publish(s, walk, dictionary).to_xcom()


def publish_dictionary(s: Settings, *, generated_at: str | None = None, out_dir: Path | None = None,
                       read_inbox: bool = False, intakes: list[dict[str, Any]] | None = None) -> Path:
    """The bilingual data dictionary, with each source's coverage of its latest landed delivery,
    into ``exchange/dictionary/`` beside the data (replaced whole, never half written). ``intakes``:
    this run's, whose sha256 say which deliveries are the latest without hashing them again."""

    std = standards(s)
    known = {(i["source_id"], i["entity"]): i["delivery_sha256"] for i in intakes or []
             if i.get("status") == "landed" and i.get("delivery_sha256")}
    # the counts of a delivery landed before are kept under its sha256 (build/state/coverage)
    files = build_dictionary(std, coverage(std, s, read_inbox=read_inbox, known_sha256=known,
                                           cache_dir=s.build_dir / "state" / "coverage"),
                             generated_at=generated_at)
    return write_dictionary(out_dir or s.exchange_dir / "dictionary", files)


@records_failure
def feedback(run: dict[str, Any], intakes: list[dict[str, Any]], transformed: dict[str, Any]) -> dict[str, Any]:
    return feedback_step.feedback(settings(), run["run_id"], _landed(intakes)).to_xcom()


def inbox_changes() -> list[str]:
    """The inbox's files (path relative to the inbox) that came or changed (size, modification
    time) since the last look, which this records under build/state: what the DAG tongban_inbox
    asks every few minutes to start a run when a delivery lands. Names only; nothing is read."""
    s = settings()
    seen_path = s.build_dir / "state" / "inbox-seen.json"
    try:
        seen = json.loads(seen_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        seen = {}
    now_seen: dict[str, list[int]] = {}
    for inbox in s.inbox_dirs:  # the first inbox holding a name is the one a run reads (find_delivery)
        for path in sorted(p for p in inbox.rglob("*") if p.is_file() and not p.name.startswith(".")):
            st = path.stat()
            now_seen.setdefault(path.relative_to(inbox).as_posix(), [st.st_size, st.st_mtime_ns])
    changed = [name for name, mark in now_seen.items() if seen.get(name) != mark]
    if now_seen != seen:
        seen_path.parent.mkdir(parents=True, exist_ok=True)
        seen_path.write_text(json.dumps(now_seen, ensure_ascii=False), encoding="utf-8")
    return changed


def run_in_process(entities: list[str] | None = None) -> dict[str, Any]:
    """The same steps without Airflow (debugging, benchmarks), passing what the DAG's tasks pass."""
    run = start_run(entities)
    intakes = intake_all(run, check_early=check_early_enabled())
    transformed = transform(run, intakes)
    gate_result = gate(run, transformed)
    conservation = check_conservation(run, intakes, transformed)
    published = publish(run, intakes, transformed, gate_result, conservation)
    feedback(run, intakes, transformed)
    return json.loads(Path(published["report"]).read_text(encoding="utf-8"))
