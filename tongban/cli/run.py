"""``tongban run``: the DAG in process (like `airflow dags test`) and its summary; the exit codes."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tongban import pipeline
from tongban.airflow_env import configure, run_dag
from tongban.common.config import quiet_third_parties, settings
from tongban.common.reference import ReferenceDataError
from tongban.common.runlock import run_lock
from tongban.pipeline import LAST_FAILURE, ConservationError, UsageError
from tongban.serve import cli as serve_cli
from tongban.standards.load import StandardsError
from tongban.steps.harmonize import TransformError
from tongban.steps.results import now


#: exit codes by class (README: "Exit codes")
EXIT_OK, EXIT_INPUT, EXIT_GATE, EXIT_HELD, EXIT_BUSY, EXIT_FAILED, EXIT_INTERNAL = 0, 1, 2, 3, 4, 5, 70


def cmd_run(args: argparse.Namespace) -> int:
    quiet_third_parties()

    # one run at a time per build directory, taken before anything is read
    with run_lock(settings().build_dir, wait=args.wait):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    entities = args.entity or None
    if args.without_airflow:
        report = pipeline.run_in_process(entities)
    else:
        configure()
        started = now()
        outcome = run_dag("tongban_regional", conf={"entities": entities})
        report_path = _report_path(outcome)
        if outcome.get("state") != "success" or report_path is None:
            failure = _last_failure(started)
            if failure is not None:
                raise failure
            print(f"the DAG run ended {outcome.get('state')}: " + json.dumps(outcome.get("task_states", {}),
                                                                           ensure_ascii=False), file=sys.stderr)
            if report_path is not None:
                print(pipeline.summarize(json.loads(report_path.read_text(encoding="utf-8"))))
            return EXIT_FAILED
        report = json.loads(report_path.read_text(encoding="utf-8"))
    print(pipeline.summarize(report))
    serve_cli.after_run(report)  # open objections into the producers' feedback (tongban/serve/feedback.py)
    if not report["gate"]["success"]:
        return EXIT_GATE
    if pipeline.held_back_deliveries(report):
        return EXIT_HELD
    return EXIT_OK


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
    run.set_defaults(func=cmd_run)
