"""The operator's exchange commands: ``exchange list|verify`` and ``query``."""

from __future__ import annotations

import argparse
import sys

import duckdb

from tongban import exchange
from tongban.cli.output import table
from tongban.common.config import settings
from tongban.exchange import integrity


def cmd_exchange_list(args: argparse.Namespace) -> int:
    snaps = exchange.list_snapshots(settings().exchange_dir)
    current = {e: s.version for e, s in exchange.current_snapshots(settings().exchange_dir).items()}
    if not snaps:
        print("no snapshots yet: run `tongban run` first")
        return 0
    table(["entity", "version", "rows", "run_id", "created_at", "current", "path"],
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
    table(columns, rows)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
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
