"""``tongban run``: the DAG in process (like `airflow dags test`) and its summary; the exit codes."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

from tongban import pipeline
from tongban.airflow_env import configure, run_dag
from tongban.cli.progress import watching
from tongban.common.config import ENGINE_ENV, ENGINES, quiet_third_parties, settings
from tongban.common.reference import ReferenceDataError
from tongban.common.runlock import run_lock
from tongban.pipeline import LAST_FAILURE, ConservationError, UsageError
from tongban.serve import cli as serve_cli
from tongban.standards.load import StandardsError
from tongban.steps.harmonize import TransformError
from tongban.steps.results import now
from tongban.steps.summary import summary_json


#: exit codes by class (README: "Exit codes")
EXIT_OK, EXIT_INPUT, EXIT_GATE, EXIT_HELD, EXIT_BUSY, EXIT_FAILED, EXIT_INTERNAL = 0, 1, 2, 3, 4, 5, 70


def cmd_run(args: argparse.Namespace) -> int:
    quiet_third_parties()
    if args.engine:  # the steps (in this process: dag.test) read it from the settings
        os.environ[ENGINE_ENV] = args.engine

    # one run at a time per build directory, taken before anything is read
    with run_lock(settings().build_dir, wait=args.wait):
        if args.format != "json":
            with watching(pipeline.progress_path()):
                report, code = _run(args)
            if report is not None:
                print(pipeline.summarize(report))
            if report is not None and code != EXIT_FAILED:
                serve_cli.after_run(report)  # open objections into the producers' feedback (tongban/serve/feedback.py)
            return code
        # --format json: stdout carries the summary alone; all else the run prints (Airflow's task
        # output, the objections written) goes to stderr with the progress
        terminal = sys.stdout.isatty() and sys.stderr.isatty()  # asked before stdout moves
        with stdout_to_stderr() as stdout:
            try:
                with watching(pipeline.progress_path(), rich=terminal):
                    report, code = _run(args)
                if report is not None and code != EXIT_FAILED:
                    serve_cli.after_run(report)
            except Exception as exc:
                stdout.write(json.dumps({"exit_code": getattr(exc, "exit_code", EXIT_INTERNAL),
                                         "error": str(exc).strip().splitlines()[0] if str(exc).strip()
                                         else type(exc).__name__}, ensure_ascii=False) + "\n")
                raise
            body = summary_json(report, code) if report is not None else {"exit_code": code, "error": "the DAG run failed"}
            stdout.write(json.dumps(body, ensure_ascii=False, indent=2) + "\n")
        return code


@contextlib.contextmanager
def stdout_to_stderr():
    """File descriptor 1 points at stderr inside the block (Airflow and its loggers hold their own
    references to stdout, so swapping ``sys.stdout`` would not do); yields a writer to the real stdout."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    real = os.fdopen(os.dup(saved), "w", encoding="utf-8")
    try:
        yield real
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        real.close()


def _run(args: argparse.Namespace) -> tuple[dict | None, int]:
    """The run; returns its report (None when the DAG ended without one) and the exit code."""
    entities = args.entity or None
    if args.without_airflow:
        report = pipeline.run_in_process(entities)
    else:
        configure()
        started = now()
        pipeline.progress_event("note", message="Airflow: the DAG runs in this process (dag.test)")
        outcome = run_dag("tongban_regional", conf={"entities": entities})
        report_path = _report_path(outcome)
        if outcome.get("state") != "success" or report_path is None:
            failure = _last_failure(started)
            if failure is not None:
                raise failure
            print(f"the DAG run ended {outcome.get('state')}: " + json.dumps(outcome.get("task_states", {}),
                                                                           ensure_ascii=False), file=sys.stderr)
            report = json.loads(report_path.read_text(encoding="utf-8")) if report_path is not None else None
            return report, EXIT_FAILED
        report = json.loads(report_path.read_text(encoding="utf-8"))
    if not report["gate"]["success"]:
        return report, EXIT_GATE
    if pipeline.held_back_deliveries(report):
        return report, EXIT_HELD
    return report, EXIT_OK


class StepFailed(RuntimeError):
    """A step of a DAG run failed; its message is the step's own (it ran in an Airflow task)."""

    def __init__(self, failure: dict):
        super().__init__(f"{failure['step']} failed: {failure['message']}")
        self.exit_code = _exit_codes().get(failure.get("error"), EXIT_FAILED)


def _exit_codes() -> dict[str, int]:
    """Error class name -> its exit code, from the classes themselves (an Airflow task's error
    reaches `tongban run` by name only, through the last-failure record)."""

    return {c.__name__: c.exit_code for c in (StandardsError, UsageError, ReferenceDataError, TransformError,
                                                 ConservationError)}


def _last_failure(since: str) -> StepFailed | None:
    path = settings().build_dir / "runs" / LAST_FAILURE
    try:
        failure = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return StepFailed(failure) if failure.get("at", "") >= since else None


def _report_path(outcome: dict) -> Path | None:
    published = outcome.get("published")
    if isinstance(published, dict) and published.get("report"):
        return Path(published["report"])
    return None


def register(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser("run", help="run the pipeline DAG in process and print a summary")
    run.add_argument("--entity", action="append", help="only this entity (repeatable); default: all mapped")
    run.add_argument("--without-airflow", action="store_true", help="call the steps directly (debugging)")
    run.add_argument("--wait", type=float, metavar="SECONDS", nargs="?", const=3600.0, default=None,
                     help="wait for a run holding this build directory to finish (default 3600 s; "
                          "without --wait a second run exits at once with code 4)")
    run.add_argument("--engine", choices=list(ENGINES), default=None,
                     help=f"where dbt builds the models: duckdb (default) or spark (a local Spark; the spark "
                          f"extra: make env-spark); default ${ENGINE_ENV} or duckdb")
    run.add_argument("--format", choices=["text", "json"], default="text",
                     help="json: a machine-readable summary alone on stdout (progress goes to stderr)")
    run.set_defaults(func=cmd_run)
