"""The catalog: the exchange's one commit point and its read-only door.

* :func:`rebuild_catalog` writes a complete new ``catalog.duckdb`` beside the old one (a view per
  current snapshot, ``exchange_runs``, ``exchange_snapshots``, ``exchange_commit``) and swaps it in
  with ``os.replace``. A reader holding the old file keeps a consistent view (its views point at
  snapshot directories that are never modified or deleted); a new reader gets the new file.
* Every path the catalog names is relative to the exchange directory, so the exchange can be copied
  or mounted elsewhere: whoever opens the catalog sets DuckDB's ``file_search_path`` to the exchange
  directory (or opens it from there); docs/consumers.md shows how for BI tools.
* :func:`connect_catalog` / :func:`query` are the read side. Inside one process DuckDB caches database
  instances by path, so ``duckdb.connect(catalog, read_only=True)`` would silently return the *old*
  catalog while any connection to it is still open. :func:`connect_catalog` avoids that cache by
  attaching the catalog read-only to a fresh in-memory instance (and detaching the in-memory database,
  so nothing but temp objects can be written).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import duckdb

from tongban.common.config import settings
from tongban.common.sqlquote import quote_ident, quote_literal
from tongban.exchange.files import remove_duckdb_file, replaced_atomically, utc_now_iso
from tongban.exchange.runs import RUN_COLUMNS, run_record_files, to_utc_naive
from tongban.exchange.signing import write_public_keys
from tongban.exchange.snapshots import (
    CATALOG_FILE,
    COMMIT_TABLE,
    ExchangeError,
    NoPublicationError,
    Snapshot,
    check_entity,
    current_of,
    list_snapshots,
)

CATALOG_ALIAS = "catalog"
NO_PUBLICATION_MESSAGE = "no publication yet: run `tongban run` first"

SNAPSHOT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("entity", "VARCHAR"),
    ("version", "INTEGER"),
    ("rows", "BIGINT"),
    ("run_id", "VARCHAR"),
    ("created_at", "TIMESTAMP"),
    ("path", "VARCHAR"),
    ("is_current", "BOOLEAN"),
)


#: where a view's relative paths start: DuckDB's ``file_search_path`` when it is set (to the exchange
#: directory: see :func:`connect_catalog`, docs/consumers.md), else the working directory. Spelled out
#: because DuckDB itself tries the working directory *before* the search path, so a working directory
#: holding another exchange's ``<entity>/v<N>/`` would silently win.
_BASE = ("(CASE WHEN current_setting('file_search_path') = '' THEN '' "
         "ELSE rtrim(current_setting('file_search_path'), '/') || '/' END)")


def _relative(root: Path, path: Path) -> str:
    return path.resolve().relative_to(root.resolve()).as_posix()


def _parquet_list_sql(root: Path, paths: Sequence[Path]) -> str:
    """The files as a SQL list of paths relative to the exchange directory ``root`` (so the exchange
    can be copied or mounted elsewhere)."""
    return "[" + ", ".join(f"{_BASE} || {quote_literal(_relative(root, p))}" for p in paths) + "]"


def _to_timestamp(created_at: str) -> datetime | None:
    try:
        return to_utc_naive(created_at, "created_at")
    except ValueError:
        return None


def rebuild_catalog(exchange_root: Path, *, dictionary: str | None = None) -> Path:
    """Build a fresh catalog beside the current one and atomically swap it in. Returns its path.

    The catalog holds a view per current snapshot, ``exchange_runs`` over the run files present now
    (call this again after :func:`record_run` to make new runs visible) and the ``exchange_snapshots``
    table listing every complete snapshot with ``is_current``.

    The swap is the exchange's one commit point: what the catalog names (snapshot versions, run
    files, in ``exchange_commit`` the dictionary's directory under ``_dictionary/``) is published;
    anything else a crashed run left is removed by :func:`recover` at the next run's start.
    Every public signing key is written to ``keys.json`` first, so whatever the new catalog names
    can be checked against a key published beside it.
    """
    root = Path(exchange_root)
    root.mkdir(parents=True, exist_ok=True)
    write_public_keys(root)
    snapshots = list_snapshots(root)
    current = current_of(snapshots)
    views = _entity_views(root, current)
    run_files = run_record_files(root)

    catalog = root / CATALOG_FILE
    tmp = root / f"{CATALOG_FILE}.tmp-{secrets.token_hex(6)}"
    with replaced_atomically(catalog, tmp, remove_duckdb_file):
        # the views' relative paths are resolved (and checked) against the exchange while they are made
        con = duckdb.connect(str(tmp), config={"file_search_path": str(root.resolve())})
        try:
            for entity, files_literal in views:
                con.execute(
                    f"CREATE VIEW {quote_ident(entity)} AS "
                    f"SELECT * FROM read_parquet({files_literal}, hive_partitioning = false)"
                )
            con.execute(f"CREATE VIEW exchange_runs AS {_runs_sql(root, run_files)}")
            _create_snapshots_table(con, root, snapshots, current)
            con.execute(f"CREATE TABLE {COMMIT_TABLE} (committed_at TIMESTAMP, run_files VARCHAR[], dictionary VARCHAR)")
            con.execute(f"INSERT INTO {COMMIT_TABLE} VALUES (?, ?, ?)",
                        [_to_timestamp(utc_now_iso()), [p.name for p in run_files], dictionary])
            con.execute("CHECKPOINT")
        finally:
            con.close()
    return catalog


def _entity_views(root: Path, current: dict[str, Snapshot]) -> list[tuple[str, str]]:
    """(entity, its Parquet files as a SQL list) per current snapshot; entities whose names differ only
    in case, or a snapshot without files, are refused."""
    seen: dict[str, str] = {}
    for entity in current:
        check_entity(entity)
        other = seen.setdefault(entity.lower(), entity)
        if other != entity:
            raise ExchangeError(f"entities {other!r} and {entity!r} differ only in case; DuckDB names do not")

    views: list[tuple[str, str]] = []
    for entity, snapshot in current.items():
        files = snapshot.parquet_files
        if not files:
            raise ExchangeError(f"snapshot {snapshot.path} has a manifest but no Parquet files")
        views.append((entity, _parquet_list_sql(root, files)))
    return views


def _runs_sql(root: Path, run_files: Sequence[Path]) -> str:
    """The query of ``exchange_runs``: the run files with the columns of :data:`RUN_COLUMNS` (none: no rows)."""
    run_columns = ", ".join(f"CAST({quote_ident(n)} AS {k}) AS {quote_ident(n)}" for n, k in RUN_COLUMNS)
    if run_files:
        return (
            f"SELECT {run_columns} FROM read_parquet({_parquet_list_sql(root, run_files)}, "
            "union_by_name = true, hive_partitioning = false)"
        )
    empty_columns = ", ".join(f"CAST(NULL AS {k}) AS {quote_ident(n)}" for n, k in RUN_COLUMNS)
    return f"SELECT {empty_columns} WHERE false"


def _create_snapshots_table(con: duckdb.DuckDBPyConnection, root: Path, snapshots: Sequence[Snapshot],
                            current: dict[str, Snapshot]) -> None:
    """``exchange_snapshots``: every complete snapshot; ``path`` relative to the exchange directory."""
    schema = ", ".join(f"{quote_ident(n)} {k}" for n, k in SNAPSHOT_COLUMNS)
    con.execute(f"CREATE TABLE exchange_snapshots ({schema})")
    if snapshots:
        con.executemany(
            "INSERT INTO exchange_snapshots VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    s.entity,
                    s.version,
                    s.rows,
                    s.run_id,
                    _to_timestamp(s.created_at),
                    _relative(root, s.path),
                    current[s.entity].version == s.version,
                )
                for s in snapshots
            ],
        )


def connect_catalog(exchange_root: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the current catalog; the caller closes it.

    The catalog file is attached ``READ_ONLY`` to a fresh in-memory DuckDB instance (whose own
    in-memory database is then detached) instead of ``duckdb.connect(path, read_only=True)``: that
    way DuckDB's per-process instance cache cannot hand back a catalog that has since been replaced,
    even while older connections are still open. Only temporary objects can be created, and
    only files below the exchange can be read. ``file_search_path`` is the exchange directory, which
    the views' relative paths start from.
    """
    catalog = Path(exchange_root) / CATALOG_FILE
    if not catalog.is_file():
        raise NoPublicationError(f"{NO_PUBLICATION_MESSAGE} (no catalog at {catalog})")
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH {quote_literal(str(catalog.resolve()))} AS {CATALOG_ALIAS} (READ_ONLY)")
        con.execute(f"USE {CATALOG_ALIAS}")
        con.execute("DETACH memory")
        # Consumers see the exchange and nothing else: no reading the restricted warehouse, the raw
        # deliveries or any other file (read_parquet, ATTACH, COPY ...), and no turning that back on.
        roots = sorted({str(Path(exchange_root).resolve()) + os.sep, str(Path(exchange_root).absolute()) + os.sep})
        con.execute(f"SET file_search_path = {quote_literal(str(Path(exchange_root).resolve()))}")
        con.execute(f"SET allowed_directories = [{', '.join(quote_literal(r) for r in roots)}]")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


def query(exchange_root: Path, sql: str, *, limit: int | None = None) -> tuple[list[str], list[tuple]]:
    """Run ``sql`` on a read-only catalog connection; returns (column names, rows) and closes it.

    ``limit`` caps the number of rows fetched (the statement itself is not rewritten). Statements that
    write to the catalog fail with DuckDB's own error.
    """
    columns, rows, _ = query_counted(exchange_root, sql, limit=limit, count=False)
    return columns, rows


def query_counted(exchange_root: Path, sql: str, *, limit: int | None = None,
                  count: bool = True) -> tuple[list[str], list[tuple], int | None]:
    """:func:`query`, and (``count``) how many rows the statement returns in all: the rows past
    ``limit`` are counted in batches as they stream by, never held (``tongban query`` says
    "showing N of TOTAL rows")."""
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise ValueError(f"limit must be a non-negative int or None, got {limit!r}")
    con = connect_catalog(exchange_root)
    try:
        check_read_only(con, sql)
        cursor = con.execute(sql)
        if cursor.description is None:
            return [], [], 0
        columns = [d[0] for d in cursor.description]
        rows = [tuple(r) for r in (cursor.fetchall() if limit is None else cursor.fetchmany(limit))]
        total = len(rows) if count else None
        while count and limit is not None and (batch := cursor.fetchmany(65536)):
            total += len(batch)
        return columns, rows, total
    finally:
        con.close()


class ReadOnlyError(PermissionError):
    """A statement other than a query was sent to the exchange's read-only door."""


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Refuse ``sql`` unless every statement in it is a query (``SELECT``, ``WITH``, ``FROM``,
    ``DESCRIBE``, ``SHOW``, ``SUMMARIZE``): no COPY, ATTACH, INSTALL/LOAD, PRAGMA, SET, CALL, EXPORT
    or DDL. With external access off and the exchange the only directory a query may read (see
    :func:`connect_catalog`), nothing can be written and nothing outside the exchange read."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise ReadOnlyError(f"not a valid query: {str(exc).splitlines()[0]}") from exc
    refused = sorted({str(s.type).rsplit(".", 1)[-1] for s in statements} - {"SELECT"})
    if refused:
        raise ReadOnlyError(f"the exchange is read-only: only queries (SELECT) are allowed, not {', '.join(refused)}")


def default_exchange_root() -> Path:
    """The configured exchange directory (``TONGBAN_EXCHANGE_DIR`` or ``exchange/``)."""

    return settings().exchange_dir
