"""The operator's exchange commands: ``exchange list|verify|rotate-key|rollback`` and ``query``."""

from __future__ import annotations

import argparse
import json
import sys

import duckdb

from tongban import exchange
from tongban.cli.output import add_format, emit
from tongban.common.config import settings
from tongban.common.runlock import run_lock
from tongban.exchange import integrity, rollback, signing
from tongban.exchange.catalog import query_counted
from tongban.serve import audit


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
    """Every part of the current snapshots against its manifest's sha256 and, with ``--signatures``,
    every kept manifest's signature; exit 1 naming each problem."""

    root = settings().exchange_dir
    problems = integrity.verify(root)
    signature_problems: list[str] = []
    accepted: list[str] = []
    if args.signatures:
        signature_problems, accepted = integrity.signature_problems(root, allow_unsigned=args.allow_unsigned)
    if args.format == "json":
        print(json.dumps({"exchange": str(root), "ok": not (problems or signature_problems), "problems": problems,
                          "signatures_checked": bool(args.signatures), "signature_problems": signature_problems,
                          "accepted_unsigned": accepted}, ensure_ascii=False, indent=2))
        return 1 if problems or signature_problems else 0
    for problem in problems:
        print(f"✗ {problem}", file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s) in {root}: the next `tongban run` writes these parts again from the "
              "warehouse; find out who changed them", file=sys.stderr)
    for line in accepted:
        print(f"! {line}")
    for problem in signature_problems:
        print(f"✗ {problem}", file=sys.stderr)
    if signature_problems:
        print(f"{len(signature_problems)} signature problem(s) in {root}: a manifest was changed, or signed "
              "by a key this exchange does not hold", file=sys.stderr)
    if problems or signature_problems:
        return 1
    signed = " and every kept manifest's signature checks" if args.signatures else ""
    print(f"every part of the current snapshots in {root} matches its manifest{signed}")
    return 0


def cmd_exchange_rotate_key(args: argparse.Namespace) -> int:
    """A new signing key signs from now on; every older public key stays published."""
    keys = signing.public_keys()
    new = signing.rotate()
    path = signing.write_public_keys(settings().exchange_dir)
    audit.record("change", None, {"change": "signing_key_rotated", "operator_action": True, "key_id": new,
                                  "previous_key_id": keys[-1]["key_id"] if keys else None})
    print(f"new signing key {new} signs from now on; {len(keys) + 1} public key(s) in {path}")
    return 0


def cmd_exchange_rollback(args: argparse.Namespace) -> int:
    """Republish a kept snapshot version as the newest (under the run lock, audited)."""
    text = args.to.strip().lower().removeprefix("v")
    if not text.isdigit():
        print(f"--to: expected a version like v3, got {args.to!r}", file=sys.stderr)
        return 1
    root = settings().exchange_dir
    with run_lock(settings().build_dir):  # never beside a run: it publishes the same entities
        integrity.recover(root)  # what a killed run left is not a version to roll back to
        try:
            done = rollback.rollback(root, int(text), args.entity)
        except exchange.ExchangeError as exc:
            print(exc, file=sys.stderr)
            return 1
    for r in done:
        audit.record("change", None, {"change": "rolled_back", "operator_action": True, "entity": r.entity,
                                      "from_version": r.from_version, "to_version": r.to_version,
                                      "new_version": r.snapshot.version})
        print(f"{r.entity}: v{r.snapshot.version} now holds v{r.to_version} (was v{r.from_version})")
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
    ver.add_argument("--signatures", action="store_true",
                     help="also check the signature of every kept snapshot's manifest")
    ver.add_argument("--allow-unsigned", action="store_true",
                     help="accept unsigned manifests published before signing began (listed, not errors)")
    add_format(ver)
    ver.set_defaults(func=cmd_exchange_verify)
    rot = ex_sub.add_parser("rotate-key", help="a new key signs from now on; old public keys stay published")
    rot.set_defaults(func=cmd_exchange_rotate_key)
    rb = ex_sub.add_parser("rollback", help="republish a kept snapshot version as the newest")
    rb.add_argument("--to", required=True, metavar="vN", help="the kept version to republish, e.g. v3")
    rb.add_argument("--entity", help="only this entity (default: every entity that keeps vN)")
    rb.set_defaults(func=cmd_exchange_rollback)
    q = sub.add_parser("query", help="read-only SQL on the exchange catalog")
    q.add_argument("sql")
    q.add_argument("--limit", type=int, default=1000, help="rows shown at most (default 1000); "
                   "the output says when it cut rows, and how many there are")
    add_format(q)
    q.set_defaults(func=cmd_query)
