"""``tongban sample``: synthetic province deliveries with answer keys (docs/samples.md)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tongban.cli.output import add_format, emit
from tongban.common.config import settings
from tongban.sample import DEFAULT_ROWS, DEFAULT_SEED, ENTITIES, generate_deliveries


def cmd_sample(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else settings().build_dir / "inbox"
    started = time.perf_counter()
    try:
        written = generate_deliveries(args.entity, args.rows, args.seed, out)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - started
    emit(["province", "delivery", "rows", "defective rows", "answer key"],
         [(d.province, [str(f) for f in d.files] if args.format == "json" else ", ".join(str(f) for f in d.files),
           d.rows, d.defects, str(d.answer_key)) for d in written],
         fmt=args.format, title=f"{args.entity}: seed {args.seed}, {elapsed:.1f} s", entity=args.entity,
         seed=args.seed)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    smp = sub.add_parser("sample", help="write synthetic province deliveries with answer keys")
    smp.add_argument("entity", choices=ENTITIES)
    smp.add_argument("--rows", type=int, default=DEFAULT_ROWS, help=f"rows per province (default {DEFAULT_ROWS})")
    smp.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    smp.add_argument("--out", help="output directory (default: build/inbox, i.e. $TONGBAN_BUILD_DIR/inbox)")
    add_format(smp)
    smp.set_defaults(func=cmd_sample)
