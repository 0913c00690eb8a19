"""The operator's exchange commands: ``exchange list|verify`` and ``query``."""

from __future__ import annotations

import argparse
import json
import sys

import duckdb

from tongban import exchange
from tongban.cli.output import add_format, emit
from tongban.common.config import settings
from tongban.exchange import integrity
from tongban.exchange.catalog import query_counted


def cmd_exchange_list(args: argparse.Namespace) -> int:
    snaps = exchange.list_snapshots(settings().exchange_dir)
    current = {e: s.version for e, s in exchange.current_snapshots(settings().exchange_dir).items()}
    if not snaps and args.format == "text":
        print("no snapshots yet: run `tongban run` first")
        return 0
    emit(["entity", "version", "rows", "run_id", "created_at", "current", "path"],
         [(s.entity, s.version if args.format == "json" else f"v{s.version}", s.rows, s.run_id, s.created_at,
           (current.get(s.entity) == s.version) if args.format == "json" else
           ("*" if current.get(s.entity) == s.version else ""), str(s.path)) for s in snaps],
         fmt=args.format, title="exchange snapshots")
    return 0


def cmd_exchange_verify(args: argparse.Namespace) -> int:
    """Every part of the current snapshots against its manifest's sha256; exit 1 naming each
    part that does not match (the next run writes it again from the warehouse)."""

    root = settings().exchange_dir
    problems = integrity.verify(root)
    if args.format == "json":
        print(json.dumps({"exchange": str(root), "ok": not problems, "problems": problems},
                         ensure_ascii=False, indent=2))
        return 1 if problems else 0
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
        columns, rows, total = query_counted(settings().exchange_dir, args.sql, limit=args.limit)
    except (FileNotFoundError, PermissionError) as exc:
        print(exc, file=sys.stderr)
        return 1
    except duckdb.Error as exc:
        print(f"query failed: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    truncated = total is not None and total > len(rows)
    emit(columns, rows, fmt=args.format, truncated=truncated, total=total)
    if truncated and args.format == "text":
        print(f"showing {len(rows)} of {total} rows (--limit {args.limit}; raise it to see more)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    ex = sub.add_parser("exchange", help="the shared exchange")
    ex_sub = ex.add_subparsers(dest="exchange_command", required=True)
    ls = ex_sub.add_parser("list", help="snapshots per entity")
    add_format(ls)
    ls.set_defaults(func=cmd_exchange_list)
    ver = ex_sub.add_parser("verify", help="check every current part against its manifest's sha256")
    add_format(ver)
    ver.set_defaults(func=cmd_exchange_verify)
    q = sub.add_parser("query", help="read-only SQL on the exchange catalog")
    q.add_argument("sql")
    q.add_argument("--limit", type=int, default=1000, help="rows shown at most (default 1000); "
                   "the output says when it cut rows, and how many there are")
    add_format(q)
    q.set_defaults(func=cmd_query)
