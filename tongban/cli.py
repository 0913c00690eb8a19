"""The ``tongban`` command line.

    tongban run                  run the DAG in process (like `airflow dags test`) and print a summary
    tongban standards check [--against REF]
                                 the committee's lint: file:line findings, coverage of the latest
                                 deliveries, semantic-version check against a git ref (exit 1 on error)
    tongban standards impact --against REF
                                 preview a change on the latest deliveries: values that change,
                                 rows into/out of quarantine (terminal + Markdown); publishes nothing
    tongban dictionary [--out D] the bilingual data dictionary (HTML + Markdown); runs publish it too
    tongban generate             regenerate dbt models and GX suites from standards/
    tongban exchange list        snapshots per entity
    tongban exchange verify      every current part against its manifest's sha256 (exit 1 on a mismatch)
    tongban query "SQL"          read-only SQL on the exchange catalog
    tongban sample births|licenses [--rows N] [--seed S] [--out DIR]
                                 synthetic province deliveries with answer keys (docs/samples.md)
    tongban serve | consumer add|revoke|list | audit verify|tail
                                 the served exchange (docs/consumers.md)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import duckdb

from tongban.common.config import quiet_third_parties, settings
from tongban.common.runlock import run_lock
from tongban import pipeline
from tongban.airflow_env import configure, run_dag
from tongban.pipeline import ConservationError, UsageError
from tongban.common.reference import ReferenceDataError
from tongban.standards.load import StandardsError
from tongban.steps.harmonize import TransformError
from tongban.pipeline import LAST_FAILURE
from tongban.steps.results import now
from tongban.standards.lint import check
from tongban.committee.coverage import coverage, coverage_findings
from tongban.standards.gitref import GitRefError
from tongban.standards.versioning import check_against
from tongban.standards.generate import out_of_date
from tongban.committee.coverage import format_coverage
from tongban.standards.versioning import format_changes
from tongban.committee.impact import impact, to_markdown, to_text
from tongban.pipeline import publish_dictionary
from tongban.standards.generate import load_checked, write_generated
from tongban import exchange
from tongban.exchange import integrity
from tongban.sample import generate_deliveries
from tongban.sample import DEFAULT_ROWS, DEFAULT_SEED, ENTITIES
from tongban.serve import cli as serve_cli


def _table(columns: list[str], rows: list[tuple], title: str | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for c in columns:
        table.add_column(str(c), overflow="fold")
    for r in rows:
        table.add_row(*["NULL" if v is None else str(v) for v in r])
    Console(width=200).print(table)


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


def cmd_check(args: argparse.Namespace) -> int:
    """The committee's lint: the standards themselves, coverage against the latest deliveries,
    and (with --against) the semantic-version check of what changed since a git ref."""
    from dataclasses import asdict


    s = settings()
    std = check(s.standards_dir)
    findings = list(std.findings)
    cov = []
    if args.coverage and not std.errors:
        cov = coverage(std, s)
        findings += coverage_findings(std, cov)
    changes = []
    if args.against:
        try:
            changes, version_findings = check_against(args.against, s.standards_dir, s.project_root)
        except GitRefError as exc:
            print(f"tongban standards check --against {args.against}: {exc}", file=sys.stderr)
            return 2
        findings += version_findings
    stale = []
    if not std.errors:
        stale = out_of_date(std, s.project_root)
    errors = [f for f in findings if f.severity == "error"]
    if args.format == "json":
        print(json.dumps({"findings": [f.to_dict() for f in findings],
                          "coverage": [asdict(c) | {"mapped_share": round(c.mapped_share, 4)} for c in cov],
                          "changes": [asdict(c) for c in changes],
                          "stale_generated_files": stale}, ensure_ascii=False, indent=2))
    else:
        for f in findings:
            print(str(f))
        if cov:
            print("\ncoverage of the latest deliveries (share of rows mapped through approved entries):")
            print(format_coverage(cov))
        if args.against:
            print(f"\nchanges since {args.against}:")
            print(format_changes(changes) if changes else "  none")
        print(f"\n{len(std.entities)} entities, {len(std.code_lists)} code lists, {len(std.mappings)} mappings, "
              f"{len(std.crosswalks)} crosswalks: {len(errors)} error(s), {len(findings) - len(errors)} warning(s)")
        if stale:
            print("generated files are out of date (run `tongban generate`): " + ", ".join(stale))
    return 1 if errors or stale else 0


def cmd_impact(args: argparse.Namespace) -> int:
    """What a standards/mapping change would do to the latest deliveries, before it runs."""
    quiet_third_parties()

    s = settings()
    try:
        report = impact(args.against, s=s, entities=args.entity or None, top=args.top)
    except (GitRefError, StandardsError) as exc:
        print(f"tongban standards impact --against {args.against}: {exc}", file=sys.stderr)
        return 2
    print(to_text(report))
    md = Path(args.markdown) if args.markdown else s.build_dir / "impact" / f"impact-{report.commit[:12]}.md"
    md.parent.mkdir(parents=True, exist_ok=True)
    md.write_text(to_markdown(report), encoding="utf-8")
    print(f"\nMarkdown for the review: {md}")
    return 0


def cmd_dictionary(args: argparse.Namespace) -> int:
    """Write the bilingual data dictionary (HTML + Markdown) with coverage of the latest deliveries."""
    from datetime import UTC, datetime


    s = settings()
    out = Path(args.out) if args.out else s.build_dir / "dictionary"
    index = publish_dictionary(s, generated_at=datetime.now(UTC).isoformat(timespec="seconds"), out_dir=out,
                               read_inbox=True)
    print(f"data dictionary: {index}  (Markdown: {index.parent / 'dictionary.md'})")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    s = settings()
    try:
        std = load_checked(s.standards_dir)
    except StandardsError as exc:
        print(exc, file=sys.stderr)
        return 1
    changed = write_generated(std, s.project_root)
    print("\n".join(f"wrote {c}" for c in changed) or "everything up to date")
    return 0


def cmd_exchange_list(args: argparse.Namespace) -> int:
    snaps = exchange.list_snapshots(settings().exchange_dir)
    current = {e: s.version for e, s in exchange.current_snapshots(settings().exchange_dir).items()}
    if not snaps:
        print("no snapshots yet: run `tongban run` first")
        return 0
    _table(["entity", "version", "rows", "run_id", "created_at", "current", "path"],
           [(s.entity, f"v{s.version}", s.rows, s.run_id, s.created_at, "*" if current.get(s.entity) == s.version else "",
             str(s.path)) for s in snaps], title="exchange snapshots")
    return 0


def cmd_exchange_verify(args: argparse.Namespace) -> int:
    """Every part of the current snapshots against its manifest's sha256; exit 1 naming each
    part that does not match (the next run writes it again from the warehouse)."""

    root = settings().exchange_dir
    problems = integrity.verify(root)
    for problem in problems:
        print(f"✗ {problem}", file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s) in {root}: the next `tongban run` writes these parts again from the "
              "warehouse; find out who changed them", file=sys.stderr)
        return 1
    print(f"every part of the current snapshots in {root} matches its manifest")
    return 0


def cmd_query(args: argparse.Namespace) -> int:


    try:
        columns, rows = exchange.query(settings().exchange_dir, args.sql, limit=args.limit)
    except (FileNotFoundError, PermissionError) as exc:
        print(exc, file=sys.stderr)
        return 1
    except duckdb.Error as exc:
        print(f"query failed: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    _table(columns, rows)
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    import time


    out = Path(args.out) if args.out else settings().build_dir / "inbox"
    started = time.perf_counter()
    try:
        written = generate_deliveries(args.entity, args.rows, args.seed, out)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - started
    _table(["province", "delivery", "rows", "defective rows", "answer key"],
           [(d.province, ", ".join(str(f) for f in d.files), d.rows, d.defects, str(d.answer_key)) for d in written],
           title=f"{args.entity}: seed {args.seed}, {elapsed:.1f} s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tongban", description="通办 — regional data-standards harmonization pipeline",
                                epilog="exit codes: 0 ok, 1 bad input (standards, arguments, reference data), "
                                       "2 quality gate failed, 3 a delivery was held back, 4 another run holds "
                                       "the build directory, 5 the run failed, 70 internal error")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the pipeline DAG in process and print a summary")
    run.add_argument("--entity", action="append", help="only this entity (repeatable); default: all mapped")
    run.add_argument("--without-airflow", action="store_true", help="call the steps directly (debugging)")
    run.add_argument("--wait", type=float, metavar="SECONDS", nargs="?", const=3600.0, default=None,
                     help="wait for a run holding this build directory to finish (default 3600 s; "
                          "without --wait a second run exits at once with code 4)")
    run.set_defaults(func=cmd_run)
    std = sub.add_parser("standards", help="the standards committee's tools")
    std_sub = std.add_subparsers(dest="standards_command", required=True)
    chk = std_sub.add_parser("check", help="validate standards/ and the mappings; coverage; versions")
    chk.add_argument("--format", choices=["text", "json"], default="text")
    chk.add_argument("--no-coverage", dest="coverage", action="store_false",
                     help="skip the coverage of the latest deliveries (reads the inbox)")
    chk.add_argument("--against", metavar="GIT_REF",
                     help="classify the changes since GIT_REF (major/minor/patch) and check the version bumps")
    chk.set_defaults(func=cmd_check)
    imp = std_sub.add_parser("impact", help="preview what a change does to the latest deliveries (nothing is published)")
    imp.add_argument("--against", metavar="GIT_REF", required=True,
                     help="compare the working-tree standards with those at GIT_REF (e.g. HEAD, main)")
    imp.add_argument("--entity", action="append", help="only this entity (repeatable)")
    imp.add_argument("--markdown", metavar="FILE", help="write the Markdown report here "
                     "(default build/impact/impact-<commit>.md)")
    imp.add_argument("--top", type=int, default=5, help="value changes and reasons shown per field (default 5)")
    imp.set_defaults(func=cmd_impact)
    dic = sub.add_parser("dictionary", help="write the bilingual data dictionary (HTML + Markdown)")
    dic.add_argument("--out", help="directory (default build/dictionary; each run also publishes exchange/dictionary)")
    dic.set_defaults(func=cmd_dictionary)
    gen = sub.add_parser("generate", help="regenerate dbt models and GX suites from standards/")
    gen.set_defaults(func=cmd_generate)
    ex = sub.add_parser("exchange", help="the shared exchange")
    ex_sub = ex.add_subparsers(dest="exchange_command", required=True)
    ls = ex_sub.add_parser("list", help="snapshots per entity")
    ls.set_defaults(func=cmd_exchange_list)
    ver = ex_sub.add_parser("verify", help="check every current part against its manifest's sha256")
    ver.set_defaults(func=cmd_exchange_verify)
    q = sub.add_parser("query", help="read-only SQL on the exchange catalog")
    q.add_argument("sql")
    q.add_argument("--limit", type=int, default=1000)
    q.set_defaults(func=cmd_query)

    smp = sub.add_parser("sample", help="write synthetic province deliveries with answer keys")
    smp.add_argument("entity", choices=ENTITIES)
    smp.add_argument("--rows", type=int, default=DEFAULT_ROWS, help=f"rows per province (default {DEFAULT_ROWS})")
    smp.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    smp.add_argument("--out", help="output directory (default: build/inbox, i.e. $TONGBAN_BUILD_DIR/inbox)")
    smp.set_defaults(func=cmd_sample)
    serve_cli.register(sub)  # serve, consumer, audit (tongban/serve/cli.py)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    except Exception as exc:  # one line (what, where, what to do); the traceback only with --debug
        if args.debug:
            import traceback

            traceback.print_exc()
        code = _exit_code(exc)
        print(f"tongban {args.command}: {_one_line(exc, code)}", file=sys.stderr)
    if args.command == "run" and argv is None:
        # After a run the interpreter's teardown makes DuckDB's bindings print pages of
        # "nanobind: leaked instance" noise (objects Airflow/GX keep alive); the work is done
        # and flushed, so leave without it.
        import multiprocessing.util

        # what atexit would do for multiprocessing: release the named semaphores dbt created,
        # or the resource tracker warns about "leaked semaphore objects" after we leave
        multiprocessing.util._exit_function()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _exit_code(exc: BaseException) -> int:
    code = getattr(exc, "exit_code", None)
    if isinstance(code, int):
        return code
    return EXIT_INTERNAL


def _one_line(exc: BaseException, code: int) -> str:
    text = str(exc).strip() or type(exc).__name__
    if code == EXIT_INTERNAL:
        text = f"internal error ({type(exc).__name__}: {text.splitlines()[0]}); run again with --debug " \
               "for the traceback and report it"
    return text


if __name__ == "__main__":
    sys.exit(main())
