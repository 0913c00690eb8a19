"""Rows of one immutable snapshot version, read from its Parquet through a cursor of one in-memory
DuckDB database the process shares: the version is resolved once per request (or pinned by the
cursor), and version directories never change, so a publish during a request can never mix two
versions. Sharing the database keeps its Parquet metadata cache warm across requests (safe: a path
names one immutable version); each request gets its own cursor, so requests never share state.

Values reach SQL only as bound parameters; identifiers and paths only through tongban.common.sqlquote.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import tempfile
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import duckdb

from tongban import exchange
from tongban.common.sqlquote import quote_ident, quote_literal
from tongban.exchange import Snapshot
from tongban.serve.sharing import PROVINCE_COLUMN
from tongban.steps.feedback import FORMULA_START

MAX_LIMIT = 10_000

_DB: duckdb.DuckDBPyConnection | None = None
_DB_LOCK = threading.Lock()


def _cursor() -> duckdb.DuckDBPyConnection:
    """A connection of its own to the process's shared in-memory database (close it after use)."""
    global _DB
    with _DB_LOCK:
        if _DB is None:
            db = duckdb.connect(":memory:")
            db.execute("SET parquet_metadata_cache = true")  # after connecting: it loads the parquet reader
            _DB = db
        return _DB.cursor()


class NotFound(LookupError):
    """HTTP 404."""


class BadRequest(ValueError):
    """HTTP 400."""


def snapshot_info(s: Snapshot) -> dict:
    return {"entity": s.entity, "version": s.version, "created_at": s.created_at, "run_id": s.run_id}


def manifest(s: Snapshot) -> dict:
    return json.loads(s.manifest_path.read_text(encoding="utf-8"))


def columns_of(s: Snapshot) -> list[str]:
    return [c["name"] for c in manifest(s)["columns"]]


def _parse_time(text: str) -> datetime:
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadRequest("as_of: a snapshot version (v3) or an ISO time (2026-12-04T10:00:00Z)") from exc
    return t if t.tzinfo else t.replace(tzinfo=datetime.now().astimezone().tzinfo)


def resolve(root: Path, entity: str, as_of: str | None = None, version: int | None = None) -> Snapshot:
    """The current snapshot of ``entity``, or the kept one ``as_of`` names (vN, N or a time)."""
    if as_of is None and version is None:
        current = exchange.current_snapshots(root).get(entity)
        if current is None:
            raise NotFound(f"{entity} has no published snapshot")
        return current
    kept = [s for s in exchange.list_snapshots(root) if s.entity == entity]
    if version is None:
        text = as_of.strip() if as_of else ""
        if text.removeprefix("v").isdigit():
            version = int(text.removeprefix("v"))
        else:
            moment = _parse_time(text)
            before = [s for s in kept if _parse_time(s.created_at) <= moment]
            if not before:
                raise NotFound(f"{entity} had no snapshot at {text}")
            return before[-1]
    for s in kept:
        if s.version == version:
            return s
    raise NotFound(f"{entity} has no snapshot v{version}")


def encode_cursor(version: int, key: object) -> str:
    return base64.urlsafe_b64encode(json.dumps([version, key]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        version, key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if isinstance(version, int) and isinstance(key, str):
            return version, key
    except (ValueError, TypeError):
        pass
    raise BadRequest("cursor: not a cursor this API gave out")


def _query(s: Snapshot, columns: Sequence[str], key: str, provinces: Sequence[str] | None,
           filters: Mapping[str, str], list_columns: set[str], after: str | None, limit: int | None) -> tuple[str, list]:
    text = _text_columns(s)
    files = ", ".join(quote_literal(str(p)) for p in s.parquet_files)
    where, params = [], []
    if provinces is not None:
        where.append(f"{quote_ident(PROVINCE_COLUMN)} IN ({', '.join('?' for _ in provinces)})")
        params += list(provinces)
    for column, value in filters.items():
        if column in list_columns:
            where.append(f"list_contains({quote_ident(column)}, ?)")
        else:
            # a text column is compared as it is (its row groups' min/max statistics then skip most
            # of the file); any other type as text, so "2024-01-01" finds a DATE
            ident = quote_ident(column)
            where.append(f"{ident} = ?" if column in text else f"CAST({ident} AS VARCHAR) = ?")
        params.append(value)
    if after is not None:
        where.append(f"{quote_ident(key)} > ?")
        params.append(after)
    sql = f"SELECT {', '.join(quote_ident(c) for c in columns)} FROM read_parquet([{files}])"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY {quote_ident(key)}"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return sql, params


@lru_cache(maxsize=256)
def _column_types(manifest_path: Path) -> tuple[tuple[str, str], ...]:
    """(name, type) of a version's columns; cached by the manifest's path (a version never changes)."""
    data = json.loads(manifest_path.read_text(encoding="utf-8"))
    return tuple((c["name"], str(c["type"])) for c in data["columns"])


def _types(s: Snapshot) -> tuple[tuple[str, str], ...]:
    return _column_types(s.manifest_path)


def list_columns(s: Snapshot) -> set[str]:
    return {name for name, kind in _types(s) if kind.endswith("[]")}


def _text_columns(s: Snapshot) -> set[str]:
    return {name for name, kind in _types(s) if kind.upper() == "VARCHAR"}


def read_page(s: Snapshot, columns: Sequence[str], key: str, provinces: Sequence[str] | None,
              filters: Mapping[str, str], after: str | None, limit: int) -> tuple[list[str], list[tuple], str | None]:
    """(columns, rows, next cursor) of one page in key order."""
    sql, params = _query(s, columns, key, provinces, filters, list_columns(s), after, limit + 1)
    con = _cursor()
    try:
        rows = con.execute(sql, params).fetchall()
    finally:
        con.close()
    more = len(rows) > limit
    rows = rows[:limit]
    key_at = list(columns).index(key)
    return list(columns), rows, encode_cursor(s.version, rows[-1][key_at]) if more else None


def parquet_bytes(s: Snapshot, columns: Sequence[str], key: str, provinces: Sequence[str] | None,
                  filters: Mapping[str, str], after: str | None, limit: int) -> tuple[bytes, int, str | None]:
    """The same page as Parquet (written by DuckDB from the bound query, through a temp file), its
    row count and the next cursor."""
    sql, params = _query(s, columns, key, provinces, filters, list_columns(s), after, limit + 1)
    con = _cursor()
    try:
        with tempfile.TemporaryDirectory(prefix="tongban-serve-") as tmp:
            out = Path(tmp) / "page.parquet"
            con.execute(f"CREATE TEMP TABLE page AS {sql}", params)
            total = con.execute("SELECT count(*) FROM page").fetchone()[0]
            k = quote_ident(key)
            cursor = None
            if total > limit:  # one row more than the page: there is a next one, after the page's last key
                last = con.execute(f"SELECT {k} FROM page ORDER BY {k} LIMIT 1 OFFSET ?", [limit - 1]).fetchone()[0]
                cursor = encode_cursor(s.version, last)
            con.execute(f"COPY (SELECT * FROM page ORDER BY {k} LIMIT {int(limit)}) TO {quote_literal(str(out))} "
                        "(FORMAT parquet)")
            return out.read_bytes(), min(total, limit), cursor
    finally:
        con.close()


def first_row(s: Snapshot, columns: Sequence[str], where: Mapping[str, str], key: str,
              provinces: Sequence[str] | None = None) -> dict | None:
    sql, params = _query(s, columns, key, provinces, where, list_columns(s), None, 1)
    con = _cursor()
    try:
        row = con.execute(sql, params).fetchone()
    finally:
        con.close()
    return None if row is None else dict(zip(columns, row, strict=True))


def csv_safe(value: object) -> object:
    """A cell a spreadsheet will not run as a formula (OWASP: prefix with a single quote), by the same
    rule as the producers' feedback files (a leading ' is quoted too, so the rule can be undone)."""
    if isinstance(value, str) and value.startswith(tuple(FORMULA_START)):
        return "'" + value
    return value


def to_csv(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([csv_safe("|".join(map(str, v)) if isinstance(v, list) else v) for v in row])
    return buf.getvalue()
