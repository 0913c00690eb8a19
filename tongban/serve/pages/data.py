"""What the pages read: the CURRENT snapshot of an entity (resolved once per request, read through a
fresh in-memory DuckDB over that version's Parquet, as tongban.serve.reader does), the exchange's run
records (``exchange/_runs/*.parquet``), and the page filters from the query string.

Values reach SQL only as bound parameters; file paths only through tongban.common.sqlquote.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from tongban import exchange
from tongban.common.sqlquote import quote_literal
from tongban.exchange import Snapshot
from tongban.exchange.runs import run_record_files
from tongban.serve import reader
from tongban.serve.pages.render import when

PROVINCE = re.compile(r"[1-9][0-9]")
MONTH_OR_DAY = re.compile(r"\d{4}-\d{2}(-\d{2})?")


class BadFilter(ValueError):
    """HTTP 400: a filter the page does not understand (its name, never its value, is said)."""


@dataclass(frozen=True)
class Filters:
    province: str | None = None
    entity: str | None = None
    start: dt.date | None = None  # ?from=
    end: dt.date | None = None  # ?to= (inclusive: a month means its last day)
    q: str | None = None

    def names(self) -> list[str]:
        """The filters set (for the audit: names only, never values)."""
        return [n for n, v in (("province", self.province), ("entity", self.entity), ("from", self.start),
                               ("to", self.end), ("q", self.q)) if v]


def _date(text: str, name: str, end: bool) -> dt.date:
    if not MONTH_OR_DAY.fullmatch(text):
        raise BadFilter(f"{name}: a month (2024-03) or a day (2024-03-15)")
    try:
        if len(text) == 7:
            first = dt.date.fromisoformat(text + "-01")
            if not end:
                return first
            following = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
            return following - dt.timedelta(days=1)
        return dt.date.fromisoformat(text)
    except ValueError:
        raise BadFilter(f"{name}: not a date") from None


def parse_filters(params, entities) -> Filters:
    province = (params.get("province") or "").strip() or None
    if province is not None and not PROVINCE.fullmatch(province):
        raise BadFilter("province: the two-digit GB/T 2260 province code, e.g. 32")
    entity = (params.get("entity") or "").strip() or None
    if entity is not None and entity not in entities:
        raise BadFilter("entity: not an entity of the standard")
    start = _date(params["from"].strip(), "from", False) if (params.get("from") or "").strip() else None
    end = _date(params["to"].strip(), "to", True) if (params.get("to") or "").strip() else None
    q = (params.get("q") or "").strip()[:100] or None
    return Filters(province, entity, start, end, q)


class SnapshotReader:
    """The current snapshot of one entity, or None when it has none; ``rows`` runs bound SQL over the
    view ``snap`` (that version's Parquet files)."""

    def __init__(self, root: Path, entity: str):
        try:
            self.snapshot: Snapshot | None = reader.resolve(root, entity)
        except reader.NotFound:
            self.snapshot = None
        self.entity = entity

    @property
    def columns(self) -> list[str]:
        return reader.columns_of(self.snapshot) if self.snapshot else []

    def rows(self, sql: str, params: list | None = None) -> list[tuple]:
        if self.snapshot is None:
            return []
        files = ", ".join(quote_literal(str(p)) for p in self.snapshot.parquet_files)
        con = duckdb.connect()
        try:
            con.execute(f"CREATE VIEW snap AS SELECT * FROM read_parquet([{files}])")
            try:
                return con.execute(sql, params or []).fetchall()
            except duckdb.BinderException:  # a snapshot without a column this view needs: nothing to show
                return []
        finally:
            con.close()

    def caption(self) -> str:
        s = self.snapshot
        return f"{self.entity} v{s.version} · {when(s.created_at)}" if s else f"{self.entity}: —"


def current_snapshots(root: Path) -> dict[str, Snapshot]:
    return exchange.current_snapshots(root)


def run_records(root: Path) -> list[dict]:
    """Every delivery row of every run record, oldest first (a column a newer tongban added, such as
    ``held_reason``, is None in older records)."""
    files = run_record_files(root)
    if not files:
        return []
    listed = ", ".join(quote_literal(str(p)) for p in files)
    con = duckdb.connect()
    try:
        cur = con.execute(f"SELECT * FROM read_parquet([{listed}], union_by_name = true) "
                          "ORDER BY started_at, run_id, entity, source_id")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    finally:
        con.close()


def date_clause(column: str, f: Filters, params: list) -> str:
    """`` AND column BETWEEN ...`` for the date filters (``column`` is tongban's own identifier)."""
    out = ""
    if f.start:
        out += f" AND {column} >= ?"
        params.append(f.start)
    if f.end:
        out += f" AND {column} <= ?"
        params.append(f.end)
    return out


def province_clause(f: Filters, params: list, column: str = "province_code") -> str:
    if f.province:
        params.append(f.province)
        return f" AND {column} = ?"
    return ""
