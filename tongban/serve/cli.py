"""``tongban serve``, ``tongban consumer add|revoke|list`` and ``tongban audit verify|tail``:
registered on tongban's command line by :func:`register`."""

from __future__ import annotations

import argparse
import json
import sys

from sqlalchemy.exc import SQLAlchemyError

from tongban.serve import audit, identity, state
from tongban.serve.feedback import write_open_objections
from tongban.serve.app import create_app


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn  # only when serving

    # no access log: a path can hold a record's key or a certificate number; the audit log is the record
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="info", access_log=False)
    return 0


def cmd_consumer_add(args: argparse.Namespace) -> int:
    token = identity.add_consumer(args.name, args.province, approver=args.approver)
    role = "approver for" if args.approver else "consumer of"
    print(f"registered {args.name} ({role} province {args.province}) in {state.state_url()}")
    print("its token follows; it is shown only this once (stored only as a hash):")
    print(token)
    return 0


def cmd_consumer_revoke(args: argparse.Namespace) -> int:
    identity.revoke_consumer(args.name)
    print(f"revoked {args.name} and its tokens")
    return 0


def cmd_consumer_list(args: argparse.Namespace) -> int:
    consumers = identity.list_consumers()
    if args.format == "json":
        print(json.dumps({"consumers": consumers}, ensure_ascii=False, indent=2))
        return 0
    for c in consumers:
        role = "approver" if c["approver"] else "consumer"
        revoked = f"  revoked {c['revoked_at']}" if c["revoked_at"] else ""
        print(f"{c['name']}  province {c['province']}  {role}  since {c['created_at']}{revoked}")
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    checked, broken = audit.verify()
    if broken is not None:
        print(f"audit chain broken at entry {broken.seq}: {broken.problem} ({checked} entries before it match)")
        return 1
    print(f"audit chain intact: {checked} entries")
    return 0


def cmd_audit_tail(args: argparse.Namespace) -> int:
    entries = audit.tail(args.n)
    if args.format == "json":  # one document (the default is one JSON object a line)
        print(json.dumps({"entries": entries}, ensure_ascii=False, indent=2, sort_keys=True, default=str))
        return 0
    for entry in entries:
        print(json.dumps(entry, ensure_ascii=False, sort_keys=True))
    return 0


def after_run(report: dict) -> None:
    """After ``tongban run``: the open objections into each producer's feedback for this run."""
    try:
        written = write_open_objections(report["run_id"])
    except SQLAlchemyError as exc:  # the run's own results stand; say why the objections are missing
        print(f"open objections not written to the feedback: {str(exc).splitlines()[0]}", file=sys.stderr)
        return
    for path in written:
        print(f"open objections for the producer: {path}")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the served exchange's commands to tongban's subcommands."""
    srv = sub.add_parser("serve", help="serve the exchange to consumers over HTTP (FastAPI + uvicorn)")
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument("--port", type=int, default=8000)
    srv.set_defaults(func=cmd_serve)

    con = sub.add_parser("consumer", help="registered consumers of the served exchange")
    con_sub = con.add_subparsers(dest="consumer_command", required=True)
    add = con_sub.add_parser("add", help="register a consumer; prints its token alone on the last line, once")
    add.add_argument("name")
    add.add_argument("--province", required=True, help="two-digit province code, e.g. 32")
    add.add_argument("--approver", action="store_true", help="decides applications for its province's data")
    add.set_defaults(func=cmd_consumer_add)
    rev = con_sub.add_parser("revoke", help="revoke a consumer and its tokens")
    rev.add_argument("name")
    rev.set_defaults(func=cmd_consumer_revoke)
    ls = con_sub.add_parser("list", help="registered consumers")
    _add_format(ls)
    ls.set_defaults(func=cmd_consumer_list)

    aud = sub.add_parser("audit", help="the served exchange's audit log")
    aud_sub = aud.add_subparsers(dest="audit_command", required=True)
    aud_sub.add_parser("verify", help="recompute the hash chain; exit 1 naming the first bad entry") \
        .set_defaults(func=cmd_audit_verify)
    tail = aud_sub.add_parser("tail", help="the latest entries, one JSON object a line")
    tail.add_argument("-n", type=int, default=20)
    _add_format(tail)
    tail.set_defaults(func=cmd_audit_tail)


def _add_format(parser: argparse.ArgumentParser) -> None:
    # tongban.cli.output.add_format's option: serve sits above what tongban.cli holds, and only cli imports serve
    parser.add_argument("--format", choices=["text", "json"], default="text",
                        help="json: one JSON document on stdout (for scripts)")
