"""Open objections back to their producers (异议反馈): each run writes, beside a province's feedback
files, ``<feedback>/<source_id>/<run_id>__objections.csv`` — one line per open objection on that
source's records, naming the field by the province's own column (from its mapping) and the row by
its delivered row number, so the producer can find and correct it."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from sqlalchemy import select

from tongban import exchange
from tongban.common.config import settings
from tongban.serve import reader, state
from tongban.serve.reader import csv_safe
from tongban.serve.state.models import Objection
from tongban.standards.load import load_standards

COLUMNS = ("objection_id", "entity", "record_key", "source_row_number", "delivery_sha256", "column", "field",
           "claimed_value", "reason", "raised_at")


def _state_exists(url: str) -> bool:
    """A run never creates the served state: without a SQLite file there are no objections."""
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///")).is_file()
    return True


def write_open_objections(run_id: str, *, url: str | None = None) -> list[Path]:
    """Write every source's open objections for the run ``run_id``; returns the files written."""
    url = url or state.state_url()
    if not _state_exists(url):
        return []
    s = settings()
    with state.session(url) as db:
        objections = list(db.scalars(select(Objection).where(Objection.status == "open").order_by(Objection.id)))
    if not objections:
        return []
    std = load_standards(s.standards_dir)
    current = exchange.current_snapshots(s.exchange_dir)
    lines: dict[str, list[tuple]] = {}
    for o in objections:
        snap, entity = current.get(o.entity), std.entities.get(o.entity)
        if snap is None or entity is None:
            continue
        row = reader.first_row(snap, ["source_id", "source_row_number", "delivery_sha256"], {entity.key: o.key},
                               entity.key)
        if row is None:
            continue  # the record is gone from the exchange: nothing to point at
        mapping = next((m for m in std.mappings if m.source_id == row["source_id"] and m.entity == o.entity), None)
        fm = mapping.fields.get(o.field) if mapping else None
        column = fm.source if fm and fm.source else o.field
        lines.setdefault(row["source_id"], []).append(
            (o.id, o.entity, o.key, row["source_row_number"], row["delivery_sha256"], column, o.field,
             o.claimed_value, o.reason, o.created_at.isoformat(timespec="seconds") + "Z"))
    written = []
    for source_id, rows in sorted(lines.items()):
        out = s.feedback_dir / source_id / f"{run_id}__objections.csv"
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(COLUMNS)
            w.writerows([csv_safe(v) for v in r] for r in rows)
        tmp.replace(out)
        written.append(out)
    return written
