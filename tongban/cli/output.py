"""How commands print: a rich table on a terminal, or JSON with ``--format json``."""

from __future__ import annotations

import argparse
import json
from datetime import date, datetime
from decimal import Decimal


def table(columns: list[str], rows: list[tuple], title: str | None = None) -> None:
    from rich.console import Console  # lazy: rich costs an import only commands that print tables pay
    from rich.table import Table

    t = Table(title=title, show_lines=False)
    for c in columns:
        t.add_column(str(c), overflow="fold")
    for r in rows:
        t.add_row(*["NULL" if v is None else str(v) for v in r])
    Console(width=200).print(t)


def _plain(value: object) -> object:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def to_json(columns: list[str], rows: list[tuple], **extra: object) -> str:
    """``{"columns": [...], "rows": [{column: value}], **extra}`` as indented JSON."""
    body = {"columns": list(columns), "rows": [dict(zip(columns, map(_plain, r), strict=True)) for r in rows]}
    body.update({k: _plain(v) for k, v in extra.items()})
    return json.dumps(body, ensure_ascii=False, indent=2)


def emit(columns: list[str], rows: list[tuple], *, fmt: str = "text", title: str | None = None,
         **extra: object) -> None:
    """Print rows as a table (``fmt="text"``) or as JSON (``fmt="json"``)."""
    if fmt == "json":
        print(to_json(columns, rows, **extra))
    else:
        table(columns, rows, title=title)


def add_format(parser: argparse.ArgumentParser) -> None:
    """``--format text|json`` on a command that prints a table."""
    parser.add_argument("--format", choices=["text", "json"], default="text",
                        help="json: the rows as one JSON object on stdout (for scripts)")
