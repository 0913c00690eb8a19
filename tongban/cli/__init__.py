"""The ``tongban`` command line.

    tongban run [--format json]  run the DAG in process (like `airflow dags test`): progress, then a summary
                                 (exit 3 when a delivery was held back or held over its gate threshold)
    tongban standards check [--against REF]
                                 the committee's lint: file:line findings, coverage of the latest
                                 deliveries, semantic-version check against a git ref (exit 1 on error)
    tongban standards impact --against REF
                                 preview a change on the latest deliveries: values that change,
                                 rows into/out of quarantine (terminal + Markdown); publishes nothing
    tongban standards propose PATH --source ID --province NN
                                 a proposed mapping (and crosswalks, and a report) for a new source
    tongban dictionary [--out D] the bilingual data dictionary (HTML + Markdown); runs publish it too
    tongban generate             regenerate dbt models and GX suites from standards/
    tongban exchange list        snapshots per entity
    tongban exchange verify [--signatures]
                                 every current part against its manifest's sha256, and every kept
                                 manifest's signature (exit 1 on a mismatch)
    tongban exchange rotate-key  a new signing key signs from now on (old public keys stay published)
    tongban exchange rollback --to vN [--entity E]
                                 republish a kept snapshot as the newest (audited)
    tongban query "SQL"          read-only SQL on the exchange catalog
    tongban sample births|licenses [--rows N] [--seed S] [--out DIR]
                                 synthetic province deliveries with answer keys (docs/samples.md)
    tongban serve | consumer add|revoke|list | audit verify|tail
                                 the served exchange and the dashboard (docs/consumers.md, docs/dashboard.md)
Commands that print a table take --format json.
"""

from __future__ import annotations

import argparse
import os
import sys

from tongban.cli import committee, exchange, run, sample
from tongban.cli.run import EXIT_INTERNAL
from tongban.serve import cli as serve_cli


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tongban", description="通办 — regional data-standards harmonization pipeline",
                                epilog="exit codes: 0 ok, 1 bad input (standards, arguments, reference data), "
                                       "2 quality gate failed, 3 a delivery was held back, 4 another run holds "
                                       "the build directory, 5 the run failed, 70 internal error")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = p.add_subparsers(dest="command", required=True)
    run.register(sub)
    committee.register(sub)
    exchange.register(sub)
    sample.register(sub)
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
