"""The run record: one Parquet file per run, ``exchange/_runs/<run_id>.parquet``, with the rows of
:data:`RUN_COLUMNS` (one per delivery of the run). The catalog's ``exchange_runs`` view reads them.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from tongban.common.sqlquote import quote_ident, quote_literal
from tongban.exchange.files import replaced_atomically
from tongban.exchange.snapshots import RUNS_DIR, check_run_id

#: Fixed schema of exchange/_runs/*.parquet and of the exchange_runs view, in column order.
RUN_COLUMNS: tuple[tuple[str, str], ...] = (
    ("run_id", "VARCHAR"),
    ("started_at", "TIMESTAMP"),
    ("finished_at", "TIMESTAMP"),
    ("entity", "VARCHAR"),
    ("source_id", "VARCHAR"),
    ("province_code", "VARCHAR"),
    ("delivery_file", "VARCHAR"),
    ("delivery_sha256", "VARCHAR"),
    ("status", "VARCHAR"),
    ("rows_delivered", "BIGINT"),
    ("rows_published", "BIGINT"),
    ("rows_quarantined", "BIGINT"),
    ("gate_success", "BOOLEAN"),
    ("gate_summary", "VARCHAR"),
    ("standard_version", "VARCHAR"),
    ("mapping_version", "VARCHAR"),
    ("snapshot_version", "INTEGER"),
    ("message", "VARCHAR"),
    ("top_reasons", "VARCHAR"),
    # the snapshot that carries this source's previous publication, kept because this delivery
    # was not landed (rejected, empty or missing) or was held; NULL otherwise
    ("kept_snapshot_version", "INTEGER"),
    # a delivery held by a gate threshold (status "held"): its rows that passed, not published
    # (delivered = published + held + quarantined), and which threshold, by how much; else 0 / NULL
    ("rows_held", "BIGINT"),
    ("held_reason", "VARCHAR"),
)
_RUN_COLUMN_NAMES = tuple(name for name, _ in RUN_COLUMNS)
_TIMESTAMP_COLUMNS = frozenset(name for name, kind in RUN_COLUMNS if kind == "TIMESTAMP")


def to_utc_naive(value: object, column: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"{column}: not an ISO timestamp: {value!r}") from exc
    if not isinstance(value, datetime):
        kind = "a date" if isinstance(value, date) else type(value).__name__
        raise TypeError(f"{column}: expected a datetime or an ISO timestamp string, got {kind}")
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value  # naive values are taken to be UTC already


def _run_row(run_id: str, row: Mapping[str, object]) -> tuple:
    unknown = set(row) - set(_RUN_COLUMN_NAMES)
    if unknown:
        raise ValueError(f"unknown run record field(s): {', '.join(sorted(unknown))}")
    row_run_id = row.get("run_id")
    if row_run_id is not None and row_run_id != run_id:
        raise ValueError(f"run record row has run_id {row_run_id!r}, expected {run_id!r}")
    values: list[object] = []
    for name in _RUN_COLUMN_NAMES:
        value = row.get(name)
        if name == "run_id":
            value = run_id
        elif name in _TIMESTAMP_COLUMNS:
            value = to_utc_naive(value, name)
        elif name == "top_reasons" and value is not None and not isinstance(value, str):
            value = json.dumps(value, ensure_ascii=False, default=str)
        values.append(value)
    return tuple(values)


def _runs_schema_sql() -> str:
    return ", ".join(f"{quote_ident(name)} {kind}" for name, kind in RUN_COLUMNS)


def record_run(exchange_root: Path, run_id: str, rows: list[dict]) -> Path:
    """Write the run record rows of one run to ``exchange/_runs/<run_id>.parquet`` (replacing it atomically).

    Missing keys become NULL; unknown keys, a row ``run_id`` other than ``run_id`` or an unparsable
    timestamp string raise ValueError (a timestamp of another type raises TypeError). Timestamps may be
    datetimes (naive ones are taken as UTC) or ISO strings; they are stored as UTC TIMESTAMPs. ``top_reasons`` that is not already a
    string is stored as JSON text.
    """
    check_run_id(run_id)
    values = [_run_row(run_id, row) for row in rows]
    runs_dir = Path(exchange_root) / RUNS_DIR
    runs_dir.mkdir(parents=True, exist_ok=True)
    target = runs_dir / f"{run_id}.parquet"
    tmp = runs_dir / f".{run_id}.parquet.tmp-{secrets.token_hex(6)}"
    with replaced_atomically(target, tmp, lambda p: p.unlink(missing_ok=True)):
        con = duckdb.connect(":memory:")
        try:
            con.execute(f"CREATE TABLE runs ({_runs_schema_sql()})")
            if values:
                placeholders = ", ".join("?" for _ in RUN_COLUMNS)
                con.executemany(f"INSERT INTO runs VALUES ({placeholders})", values)
            con.execute(f"COPY runs TO {quote_literal(str(tmp))} (FORMAT parquet, COMPRESSION zstd)")
        finally:
            con.close()
    return target


def run_record_files(exchange_root: Path) -> list[Path]:
    runs_dir = Path(exchange_root) / RUNS_DIR
    if not runs_dir.is_dir():
        return []
    return sorted(
        p.resolve() for p in runs_dir.glob("*.parquet") if p.is_file() and not p.name.startswith(".")
    )
