"""tongban.exchange against real DuckDB files in tmp_path."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import textwrap
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest

from tests.leaks import find_leaks
from tongban import exchange
from tongban.exchange import (
    NO_PUBLICATION_MESSAGE,
    RUN_COLUMNS,
    ExchangeError,
    NoPublicationError,
    PublishRequest,
    Snapshot,
    connect_catalog,
    current_snapshots,
    list_snapshots,
    publish_snapshot,
    query,
    rebuild_catalog,
    record_run,
)
from tongban.common.pii import mask, pseudonym, sql_ddl

V1_ROWS = [(1, "上海市", "310000"), (2, "江苏省", "320000")]
V2_ROWS = [(10, "浙江省", "330000"), (11, "安徽省", "340000"), (12, "it's quoted", "999999")]


def write_warehouse(path: Path, rows: list[tuple], table: str = "orgs") -> None:
    """(Re)create marts.<table> in the warehouse file and close it (publication opens it read-only)."""
    con = duckdb.connect(str(path))
    try:
        con.execute("CREATE SCHEMA IF NOT EXISTS marts")
        con.execute(
            f"CREATE OR REPLACE TABLE marts.{table} (id INTEGER, name VARCHAR, province_code VARCHAR)"
        )
        if rows:
            con.executemany(f"INSERT INTO marts.{table} VALUES (?, ?, ?)", rows)
    finally:
        con.close()


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "build" / "warehouse.duckdb"
    path.parent.mkdir(parents=True)
    write_warehouse(path, V1_ROWS)
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "exchange"


def publish(root: Path, warehouse: Path, *, entity: str = "orgs", run_id: str = "run-1") -> Snapshot:
    return publish_snapshot(
        root,
        entity=entity,
        warehouse_path=warehouse,
        relation="marts.orgs",
        run_id=run_id,
        standard_version="GB-2024.1",
    )


def rows_of(root: Path, sql: str) -> list[tuple]:
    return query(root, sql)[1]


# ------------------------------------------------------------------------------------------- publish


def test_publish_v1_writes_immutable_snapshot_and_manifest(root: Path, warehouse: Path) -> None:
    snap = publish(root, warehouse)

    assert snap.entity == "orgs" and snap.version == 1 and snap.rows == 2 and snap.run_id == "run-1"
    assert snap.path == (root / "orgs" / "v1").resolve()
    assert snap.parquet_files == [snap.path / "part-0.parquet"]
    assert sorted(p.name for p in snap.path.iterdir()) == ["_manifest.json", "part-0.parquet"]
    assert [p.name for p in (root / "orgs").iterdir()] == ["v1"]  # no temp dir left behind

    manifest = json.loads((snap.path / "_manifest.json").read_text(encoding="utf-8"))
    assert manifest["entity"] == "orgs"
    assert manifest["version"] == 1
    assert manifest["run_id"] == "run-1"
    assert manifest["rows"] == 2
    assert manifest["standard_version"] == "GB-2024.1"
    assert manifest["sha256"] == hashlib.sha256((snap.path / "part-0.parquet").read_bytes()).hexdigest()
    assert manifest["columns"] == [
        {"name": "id", "type": "INTEGER"},
        {"name": "name", "type": "VARCHAR"},
        {"name": "province_code", "type": "VARCHAR"},
    ]
    created = datetime.fromisoformat(manifest["created_at"])
    assert created.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - created) < timedelta(minutes=5)
    assert snap.created_at == manifest["created_at"]

    con = duckdb.connect()
    try:
        got = con.execute(
            "SELECT * FROM read_parquet(?) ORDER BY id", [str(snap.path / "part-0.parquet")]
        ).fetchall()
        codec = con.execute(
            "SELECT DISTINCT compression FROM parquet_metadata(?)", [str(snap.path / "part-0.parquet")]
        ).fetchall()
    finally:
        con.close()
    assert got == V1_ROWS
    assert codec == [("ZSTD",)]

    assert snap.to_dict() == {
        "entity": "orgs",
        "version": 1,
        "path": str(snap.path),
        "rows": 2,
        "run_id": "run-1",
        "created_at": snap.created_at,
        "kept": [],
        "problems": [],
    }


def test_publish_rebuild_and_query_v1(root: Path, warehouse: Path) -> None:
    publish(root, warehouse)
    catalog = rebuild_catalog(root)

    assert catalog == root / "catalog.duckdb"
    assert sorted(p.name for p in root.iterdir()) == ["catalog.duckdb", "keys.json", "orgs"]  # no tmp catalog left
    columns, rows = query(root, "SELECT id, name, province_code FROM orgs ORDER BY id")
    assert columns == ["id", "name", "province_code"]
    assert rows == V1_ROWS


def test_publish_v2_keeps_v1_untouched(root: Path, warehouse: Path) -> None:
    v1 = publish(root, warehouse)
    v1_bytes = (v1.path / "part-0.parquet").read_bytes()
    write_warehouse(warehouse, V2_ROWS)
    v2 = publish(root, warehouse, run_id="run-2")

    assert v2.version == 2 and v2.rows == 3 and v2.run_id == "run-2"
    assert (v1.path / "part-0.parquet").read_bytes() == v1_bytes
    assert current_snapshots(root) == {"orgs": v2}
    assert [(s.entity, s.version) for s in list_snapshots(root)] == [("orgs", 1), ("orgs", 2)]


def test_list_and_current_snapshots_sort_by_entity_then_version(root: Path, warehouse: Path) -> None:
    assert list_snapshots(root) == [] and current_snapshots(root) == {}
    publish(root, warehouse, entity="zeta")
    publish(root, warehouse, entity="alpha")
    publish(root, warehouse, entity="zeta")
    assert [(s.entity, s.version) for s in list_snapshots(root)] == [("alpha", 1), ("zeta", 1), ("zeta", 2)]
    assert {k: v.version for k, v in current_snapshots(root).items()} == {"alpha": 1, "zeta": 2}


def test_empty_relation_publishes_zero_rows(root: Path, warehouse: Path) -> None:
    write_warehouse(warehouse, [])
    snap = publish(root, warehouse)
    assert snap.rows == 0
    rebuild_catalog(root)
    assert query(root, "SELECT count(*) FROM orgs")[1] == [(0,)]
    assert [r[0] for r in rows_of(root, "DESCRIBE orgs")] == ["id", "name", "province_code"]


# ------------------------------------------------------------------------------------------- swap


OLD_READER = textwrap.dedent(
    """
    import os, sys, duckdb
    con = duckdb.connect(sys.argv[1], read_only=True,
                         config={"file_search_path": os.path.dirname(sys.argv[1])})
    def read():
        return sorted(con.execute("SELECT id FROM orgs").fetchall())
    print("before", read(), flush=True)
    sys.stdin.readline()  # wait until the parent has swapped the catalog
    print("after", read(), flush=True)
    con.close()
    """
)


def test_reader_holding_old_catalog_keeps_v1_while_new_reader_sees_v2(root: Path, warehouse: Path) -> None:
    publish(root, warehouse)
    rebuild_catalog(root)

    # The "old reader" lives in another process: in this process DuckDB would hand a new connection
    # the cached instance of the same path.
    reader = subprocess.Popen(
        [sys.executable, "-c", OLD_READER, str(root / "catalog.duckdb")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout is not None and reader.stdin is not None
        first = reader.stdout.readline()
        assert first.strip() == "before [(1,), (2,)]", reader.stderr.read() if not first else first

        write_warehouse(warehouse, V2_ROWS)
        publish(root, warehouse, run_id="run-2")
        rebuild_catalog(root)  # must succeed while the old reader holds the old file open

        reader.stdin.write("go\n")
        reader.stdin.flush()
        second = reader.stdout.readline()
        assert second.strip() == "after [(1,), (2,)]", reader.stderr.read() if not second else second
        assert reader.wait(timeout=30) == 0
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait()

    # a new reader (no connection of this process is open) sees v2
    assert sorted(rows_of(root, "SELECT id FROM orgs")) == [(10,), (11,), (12,)]
    con = duckdb.connect(str(root / "catalog.duckdb"), read_only=True, config={"file_search_path": str(root)})
    try:
        assert con.execute("SELECT count(*) FROM orgs").fetchone() == (3,)
    finally:
        con.close()


def test_connect_catalog_is_not_fooled_by_an_open_connection_in_this_process(
    root: Path, warehouse: Path
) -> None:
    publish(root, warehouse)
    rebuild_catalog(root)
    old = connect_catalog(root)
    try:
        assert old.execute("SELECT count(*) FROM orgs").fetchone() == (2,)
        write_warehouse(warehouse, V2_ROWS)
        publish(root, warehouse, run_id="run-2")
        rebuild_catalog(root)

        new = connect_catalog(root)
        try:
            assert new.execute("SELECT count(*) FROM orgs").fetchone() == (3,)
        finally:
            new.close()
        assert old.execute("SELECT count(*) FROM orgs").fetchone() == (2,)  # old view stays consistent
        assert query(root, "SELECT count(*) FROM orgs")[1] == [(3,)]
    finally:
        old.close()


# ------------------------------------------------------------------------------------------- runs


def test_exchange_runs_is_empty_with_fixed_schema_before_any_run(root: Path, warehouse: Path) -> None:
    publish(root, warehouse)
    rebuild_catalog(root)
    assert rows_of(root, "SELECT * FROM exchange_runs") == []
    described = [(r[0], r[1]) for r in rows_of(root, "DESCRIBE exchange_runs")]
    assert described == list(RUN_COLUMNS)


def test_record_run_then_exchange_runs_is_queryable(root: Path, warehouse: Path) -> None:
    snap = publish(root, warehouse)
    shanghai = timezone(timedelta(hours=8))
    path = record_run(
        root,
        "run-1",
        [
            {
                "started_at": datetime(2025, 3, 1, 9, 0, tzinfo=shanghai),  # aware -> UTC
                "finished_at": "2025-03-01T01:05:00+00:00",  # ISO string
                "entity": "orgs",
                "source_id": "sh-orgs",
                "province_code": "310000",
                "delivery_file": "上海/orgs.xlsx",
                "delivery_sha256": "ab" * 32,
                "status": "published",
                "rows_delivered": 3,
                "rows_published": 2,
                "rows_quarantined": 1,
                "gate_success": True,
                "gate_summary": "12/12",
                "standard_version": "GB-2024.1",
                "mapping_version": "m-7",
                "snapshot_version": snap.version,
                "message": "x'); DROP TABLE exchange_snapshots; --",
                "top_reasons": [{"reason": "统一社会信用代码校验失败", "count": 1}],
            },
            {"entity": "people", "status": "failed", "message": None},  # missing keys -> NULL
        ],
    )
    assert path == root / "_runs" / "run-1.parquet"
    assert [p.name for p in (root / "_runs").iterdir()] == ["run-1.parquet"]  # no temp file left

    rebuild_catalog(root)
    columns, rows = query(root, "SELECT * FROM exchange_runs ORDER BY entity")
    assert columns == [name for name, _ in RUN_COLUMNS]
    first = dict(zip(columns, rows[0], strict=True))
    assert first["run_id"] == "run-1"
    assert first["started_at"] == datetime(2025, 3, 1, 1, 0)
    assert first["finished_at"] == datetime(2025, 3, 1, 1, 5)
    assert first["delivery_file"] == "上海/orgs.xlsx"
    assert first["rows_published"] == 2 and first["gate_success"] is True and first["snapshot_version"] == 1
    assert first["message"] == "x'); DROP TABLE exchange_snapshots; --"  # bound, stored verbatim
    assert json.loads(first["top_reasons"]) == [{"reason": "统一社会信用代码校验失败", "count": 1}]
    second = dict(zip(columns, rows[1], strict=True))
    assert second["run_id"] == "run-1" and second["entity"] == "people" and second["status"] == "failed"
    assert all(second[c] is None for c in columns if c not in {"run_id", "entity", "status"})

    described = [(r[0], r[1]) for r in rows_of(root, "DESCRIBE exchange_runs")]
    assert described == list(RUN_COLUMNS)
    assert rows_of(root, "SELECT count(*) FROM exchange_snapshots") == [(1,)]


def test_record_run_replaces_atomically_and_collects_several_runs(root: Path) -> None:
    record_run(root, "run-1", [{"status": "failed"}])
    record_run(root, "run-1", [{"status": "published"}])  # re-recorded: replaced
    record_run(root, "2025-03-01T09:00:00+08:00", [{"status": "published"}, {"status": "failed"}])
    record_run(root, "run-empty", [])
    assert sorted(p.name for p in (root / "_runs").iterdir()) == [
        "2025-03-01T09:00:00+08:00.parquet",
        "run-1.parquet",
        "run-empty.parquet",
    ]
    rebuild_catalog(root)  # no entity published yet: the catalog still has the run views
    assert rows_of(root, "SELECT run_id, status FROM exchange_runs ORDER BY run_id, status") == [
        ("2025-03-01T09:00:00+08:00", "failed"),
        ("2025-03-01T09:00:00+08:00", "published"),
        ("run-1", "published"),
    ]


def test_a_failed_rebuild_keeps_the_previous_catalog_current(root: Path, warehouse: Path) -> None:
    """A rebuild that fails half way (here: a snapshot whose Parquet file is gone, so its view
    cannot be listed) leaves the catalog that was current in place, readable, and no temporary
    file behind; a reader that had it open keeps reading it."""
    publish(root, warehouse)
    rebuild_catalog(root)
    before = (root / "catalog.duckdb").read_bytes()
    reader = connect_catalog(root)
    try:
        write_warehouse(warehouse, V2_ROWS)
        v2 = publish(root, warehouse, run_id="run-2")
        for part in v2.parquet_files:
            part.unlink()
        with pytest.raises(ExchangeError, match="has a manifest but no Parquet files"):
            rebuild_catalog(root)
        assert (root / "catalog.duckdb").read_bytes() == before
        assert sorted(p.name for p in root.iterdir() if p.is_file()) == ["catalog.duckdb", "keys.json"]
        assert reader.execute("SELECT count(*) FROM orgs").fetchone() == (2,)
    finally:
        reader.close()
    assert rows_of(root, "SELECT id FROM orgs ORDER BY id") == [(1,), (2,)]


@pytest.mark.parametrize(
    "run_id", ["", "..", ".", "../x", "a/b", "a\\b", "a b", "a;b", "a'b", "运行1", "x" * 101, None]
)
def test_record_run_rejects_unsafe_run_ids(root: Path, run_id: object) -> None:
    with pytest.raises(ValueError, match="invalid run_id"):
        record_run(root, run_id, [])  # type: ignore[arg-type]
    assert not (root / "_runs").exists() or list((root / "_runs").iterdir()) == []


def test_record_run_rejects_unknown_fields_and_foreign_run_ids(root: Path) -> None:
    with pytest.raises(ValueError, match="unknown"):
        record_run(root, "run-1", [{"stauts": "typo"}])
    with pytest.raises(ValueError, match="run_id"):
        record_run(root, "run-1", [{"run_id": "run-2"}])
    with pytest.raises(ValueError, match="started_at"):
        record_run(root, "run-1", [{"started_at": "yesterday"}])
    with pytest.raises(TypeError, match="finished_at"):
        record_run(root, "run-1", [{"finished_at": date(2025, 3, 1)}])
    assert not (root / "_runs" / "run-1.parquet").exists()


# ------------------------------------------------------------------------------------------- catalog


def test_exchange_snapshots_shows_is_current(root: Path, warehouse: Path) -> None:
    publish(root, warehouse)
    publish(root, warehouse, run_id="run-2")
    publish(root, warehouse, entity="people", run_id="run-2")
    rebuild_catalog(root)
    rows = rows_of(
        root,
        "SELECT entity, version, rows, run_id, is_current FROM exchange_snapshots ORDER BY entity, version",
    )
    assert rows == [
        ("orgs", 1, 2, "run-1", False),
        ("orgs", 2, 2, "run-2", True),
        ("people", 1, 2, "run-2", True),
    ]
    paths = rows_of(
        root, "SELECT path, created_at FROM exchange_snapshots WHERE entity = 'orgs' AND version = 2"
    )
    assert paths[0][0] == "orgs/v2"  # relative to the exchange directory
    assert isinstance(paths[0][1], datetime)
    columns, _ = query(root, "SELECT * FROM exchange_snapshots")
    assert columns == ["entity", "version", "rows", "run_id", "created_at", "path", "is_current"]


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TABLE hack (i INTEGER)",
        "INSERT INTO exchange_snapshots VALUES ('x', 9, 0, 'r', NULL, '/', true)",
        "DROP VIEW orgs",
        "DELETE FROM exchange_snapshots",
        "CREATE OR REPLACE VIEW orgs AS SELECT 1",
        # a published part overwritten through the consumers' door (it used to work)
        "COPY (SELECT 99 AS id, 'tampered' AS name) TO '{part}' (FORMAT parquet)",
        "SELECT 1; COPY (SELECT 99 AS id) TO '{part}' (FORMAT parquet)",
        "COPY orgs TO '{outside}/copy.csv'",
        "EXPORT DATABASE '{outside}/export'",
        "ATTACH '{outside}/other.duckdb' AS other",
        "INSTALL httpfs",
        "LOAD json",
        "PRAGMA enable_profiling",
        "SET enable_external_access = true",
        "SET allowed_directories = ['/']",
        "CALL pragma_version()",
    ],
)
def test_write_statements_via_query_fail(root: Path, warehouse: Path, tmp_path: Path, sql: str) -> None:
    publish(root, warehouse)
    rebuild_catalog(root)
    part = next(root.glob("orgs/v1/*.parquet"))
    outside = tmp_path / "outside"
    outside.mkdir()
    before = (root / "catalog.duckdb").read_bytes(), part.read_bytes()
    with pytest.raises(PermissionError, match="the exchange is read-only: only queries"):
        query(root, sql.format(part=part, outside=outside))
    assert ((root / "catalog.duckdb").read_bytes(), part.read_bytes()) == before
    assert list(outside.iterdir()) == []
    assert rows_of(root, "SELECT count(*) FROM orgs") == [(2,)]


def test_queries_cannot_read_outside_the_exchange(root: Path, warehouse: Path, tmp_path: Path) -> None:
    """build/raw holds raw personal data: no query reads it, however the path is written."""
    publish(root, warehouse)
    rebuild_catalog(root)
    raw = tmp_path / "raw"
    raw.mkdir()
    con = duckdb.connect()
    con.execute(f"COPY (SELECT '110101199003077777' AS id_number) TO '{raw / 'births.parquet'}' (FORMAT parquet)")
    con.close()
    (raw / "births.csv").write_text("id_number\n110101199003077777\n", encoding="utf-8")
    part = next(root.glob("orgs/v1/*.parquet"))
    for sql in (f"SELECT * FROM read_parquet('{raw / 'births.parquet'}')",
                f"SELECT * FROM '{root}/../raw/births.parquet'",
                f"SELECT * FROM read_text('{raw / 'births.csv'}')",
                f"SELECT * FROM read_csv('{raw / 'births.csv'}')",
                f"SELECT * FROM glob('{raw}/*')"):
        with pytest.raises(duckdb.Error, match="Permission Error"):
            query(root, sql)
    # the positive control: the same functions read the exchange's own files
    assert query(root, f"SELECT count(*) FROM read_parquet('{part}')")[1] == [(2,)]
    assert query(root, "DESCRIBE orgs")[1] and query(root, "SHOW TABLES")[1]
    assert query(root, "WITH x AS (SELECT count(*) AS n FROM orgs) SELECT n FROM x")[1] == [(2,)]


def test_query_limit_and_statements_without_rows(root: Path, warehouse: Path) -> None:
    write_warehouse(warehouse, V2_ROWS)
    publish(root, warehouse)
    rebuild_catalog(root)
    assert query(root, "SELECT id FROM orgs ORDER BY id", limit=2) == (["id"], [(10,), (11,)])
    assert query(root, "SELECT id FROM orgs", limit=0) == (["id"], [])
    with pytest.raises(ValueError, match="limit must be a non-negative int"):
        query(root, "SELECT 1", limit=-1)


def test_no_catalog_yet_gives_a_clear_error(root: Path) -> None:
    with pytest.raises(NoPublicationError, match="no publication yet: run `tongban run` first"):
        connect_catalog(root)
    with pytest.raises(FileNotFoundError, match="no publication yet"):
        query(root, "SELECT 1")
    assert "tongban run" in NO_PUBLICATION_MESSAGE


def test_catalog_with_quotes_and_hive_like_path(tmp_path: Path) -> None:
    """Paths go into DDL as literals: a quote in the path must not break them, k=v must not add columns."""
    root = tmp_path / "it's here" / "year=2025" / "exchange"
    wh = tmp_path / "o'wh.duckdb"
    write_warehouse(wh, V2_ROWS)
    publish(root, wh)
    record_run(root, "run-1", [{"status": "published"}])
    rebuild_catalog(root)
    columns, rows = query(root, "SELECT * FROM orgs ORDER BY id")
    assert columns == ["id", "name", "province_code"]
    assert rows == V2_ROWS
    assert rows_of(root, "SELECT count(*) FROM exchange_runs") == [(1,)]


# ------------------------------------------------------------------------------------------- crashes


def test_crash_before_rename_leaves_tmp_dir_that_is_ignored(root: Path, warehouse: Path) -> None:
    publish(root, warehouse)
    write_warehouse(warehouse, V2_ROWS)
    publish(root, warehouse, run_id="run-2")
    # simulate a crash between the parquet/manifest write and the rename
    crashed = root / "orgs" / ".v3.tmp-x"
    crashed.mkdir()
    (crashed / "part-0.parquet").write_bytes((root / "orgs" / "v2" / "part-0.parquet").read_bytes())
    (crashed / "_manifest.json").write_text(
        json.dumps({"entity": "orgs", "version": 3, "run_id": "run-3", "rows": 3, "created_at": "x"}),
        encoding="utf-8",
    )

    assert current_snapshots(root)["orgs"].version == 2
    assert [s.version for s in list_snapshots(root)] == [1, 2]
    rebuild_catalog(root)
    assert rows_of(root, "SELECT max(version) FROM exchange_snapshots") == [(2,)]

    # the next publication still gets v3 (the crashed temp dir has another name) and is current
    write_warehouse(warehouse, V1_ROWS)
    v3 = publish(root, warehouse, run_id="run-3")
    assert v3.version == 3 and current_snapshots(root)["orgs"] == v3
    assert crashed.exists()  # left for an operator; never read


def test_version_dir_without_manifest_is_incomplete_but_not_reused(root: Path, warehouse: Path) -> None:
    publish(root, warehouse)
    (root / "orgs" / "v2").mkdir()  # e.g. copied in by hand, no manifest
    assert current_snapshots(root)["orgs"].version == 1
    snap = publish(root, warehouse, run_id="run-3")
    assert snap.version == 3
    assert current_snapshots(root)["orgs"].version == 3


def test_publish_raises_if_version_dir_appears_during_rename(
    root: Path, warehouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_rename = os.rename

    def racing_rename(src: os.PathLike, dst: os.PathLike) -> None:
        Path(dst).mkdir()
        (Path(dst) / "_manifest.json").write_text("{}", encoding="utf-8")  # another publisher won
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", racing_rename)
    with pytest.raises(FileExistsError, match="appeared while publishing orgs v1"):
        publish(root, warehouse)
    assert [p.name for p in (root / "orgs").iterdir()] == ["v1"]  # temp dir cleaned up
    assert (root / "orgs" / "v1" / "_manifest.json").read_text(encoding="utf-8") == "{}"  # untouched


def test_publish_takes_a_request_and_the_keyword_form_the_same_fields(root: Path, warehouse: Path) -> None:
    request = PublishRequest(entity="orgs", warehouse_path=warehouse, relation="marts.orgs", run_id="run-1",
                             standard_version="GB-2024.1")
    first = exchange.publish(root, request)
    second = publish(root, warehouse, run_id="run-2")  # publish_snapshot(root, **fields)
    assert (first.version, second.version) == (1, 2) and first.rows == second.rows == len(V1_ROWS)
    with pytest.raises(TypeError, match="partition"):
        publish_snapshot(root, **{**request.__dict__, "partition": "source_id"})  # a misspelt field
    assert [s.version for s in list_snapshots(root)] == [1, 2]


def test_publish_failure_cleans_up_temp_dir(root: Path, warehouse: Path) -> None:
    with pytest.raises(duckdb.CatalogException, match="marts.missing|missing does not exist"):
        publish_snapshot(
            root,
            entity="orgs",
            warehouse_path=warehouse,
            relation="marts.missing",
            run_id="run-1",
            standard_version="x",
        )
    assert list((root / "orgs").iterdir()) == []
    assert current_snapshots(root) == {}


def test_publish_with_warehouse_open_read_write_in_this_process_is_explained(
    root: Path, warehouse: Path
) -> None:
    con = duckdb.connect(str(warehouse))
    try:
        with pytest.raises(ExchangeError, match="close any read-write connection"):
            publish(root, warehouse)
    finally:
        con.close()
    assert list((root / "orgs").iterdir()) == []


# ------------------------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    "entity",
    [
        "",
        "a b",
        "orgs; drop table x",
        'a"; drop table x; --',
        "../orgs",
        "orgs/v1",
        ".hidden",
        "_runs",
        "_private",
        "exchange_runs",
        "Exchange_Snapshots",
        "机构",
        "1orgs",
        None,
    ],
)
def test_bad_entity_names_raise(root: Path, warehouse: Path, entity: object) -> None:
    with pytest.raises(ValueError, match="invalid (entity name|identifier)"):
        publish(root, warehouse, entity=entity)  # type: ignore[arg-type]
    assert not root.exists()


@pytest.mark.parametrize(
    "relation",
    [
        "orgs",
        "a.b.c",
        "marts.",
        ".orgs",
        'marts.orgs"; drop table x; --',
        "marts.orgs; DROP TABLE marts.orgs",
        "marts.(SELECT 1)",
        "marts.org s",
        "marts.机构",
        None,
    ],
)
def test_bad_relation_names_raise(root: Path, warehouse: Path, relation: object) -> None:
    with pytest.raises(ValueError, match="invalid (relation|relation part)"):
        publish_snapshot(
            root,
            entity="orgs",
            warehouse_path=warehouse,
            relation=relation,  # type: ignore[arg-type]
            run_id="run-1",
            standard_version="x",
        )
    assert not root.exists()
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM marts.orgs").fetchone() == (2,)
    finally:
        con.close()


def test_bad_run_id_on_publish_raises(root: Path, warehouse: Path) -> None:
    with pytest.raises(ValueError, match="invalid run_id"):
        publish(root, warehouse, run_id="../evil")


def test_entities_differing_only_in_case_are_refused_by_the_catalog(root: Path, warehouse: Path) -> None:
    publish(root, warehouse, entity="orgs")
    publish(root, warehouse, entity="Orgs")
    with pytest.raises(ExchangeError, match="case"):
        rebuild_catalog(root)
    assert not (root / "catalog.duckdb").exists()
    assert [p.name for p in root.iterdir() if p.name.startswith("catalog")] == []


# ------------------------------------------------------------------------------------------- pii

PII_KEY = b"test-only-key-0123456789abcdef0123456789"
PEOPLE = [
    # id, 姓名, mother's name, ID number, mother's ID number, phone, 登记地
    (1, "欧阳娜娜", "张三", "31010119900307123X", "310101196501011234", "13812341234", "上海"),
    (2, "李四", "王五", "32010219950101002x", "31010119900307123X", "0571-88217800", "南京"),
    (3, "赵六", None, "340103200001011111", None, None, "合肥"),
]
PEOPLE_PII = {"child_name": "name", "mother_name": "name", "id_number": "id_number",
              "mother_id_number": "id_number", "phone": "phone"}


def write_people(path: Path, *, with_sql_macro: bool = False) -> None:
    con = duckdb.connect(str(path))
    try:
        con.execute("CREATE SCHEMA IF NOT EXISTS marts")
        con.execute(
            'CREATE OR REPLACE TABLE marts.births (id INTEGER, child_name VARCHAR, mother_name VARCHAR, '
            'id_number VARCHAR, mother_id_number VARCHAR, phone VARCHAR, "登记 地" VARCHAR)'
        )
        con.executemany("INSERT INTO marts.births VALUES (?, ?, ?, ?, ?, ?, ?)", PEOPLE)
        if with_sql_macro:
            con.execute(sql_ddl())  # dbt leaves the SQL macro tongban_mask in the warehouse
    finally:
        con.close()


def publish_people(root: Path, warehouse: Path, **kwargs) -> Snapshot:
    kwargs.setdefault("pii", PEOPLE_PII)
    kwargs.setdefault("pseudonym_key", PII_KEY)
    return publish_snapshot(
        root,
        entity="births",
        warehouse_path=warehouse,
        relation="marts.births",
        run_id="run-1",
        standard_version="GB-2024.1",
        **kwargs,
    )


def raw_pii_values() -> list[str]:
    return sorted({v for row in PEOPLE for v in row[1:6] if v is not None})


@pytest.mark.parametrize("with_sql_macro", [False, True])
def test_publish_with_pii_writes_pseudonyms_and_masks_only(
    root: Path, warehouse: Path, with_sql_macro: bool
) -> None:
    write_people(warehouse, with_sql_macro=with_sql_macro)
    snap = publish_people(root, warehouse)

    expected_columns = [
        {"name": "id", "type": "INTEGER"},
        {"name": "child_name_pseudonym", "type": "VARCHAR"},
        {"name": "child_name_masked", "type": "VARCHAR"},
        {"name": "mother_name_pseudonym", "type": "VARCHAR"},
        {"name": "mother_name_masked", "type": "VARCHAR"},
        {"name": "id_number_pseudonym", "type": "VARCHAR"},
        {"name": "id_number_masked", "type": "VARCHAR"},
        {"name": "mother_id_number_pseudonym", "type": "VARCHAR"},
        {"name": "mother_id_number_masked", "type": "VARCHAR"},
        {"name": "phone_pseudonym", "type": "VARCHAR"},
        {"name": "phone_masked", "type": "VARCHAR"},
        {"name": "登记 地", "type": "VARCHAR"},
    ]
    manifest = json.loads((snap.path / "_manifest.json").read_text(encoding="utf-8"))
    assert manifest["columns"] == expected_columns
    assert manifest["rows"] == 3
    assert manifest["pii"] == {
        column: {"kind": kind, "columns": [f"{column}_pseudonym", f"{column}_masked"]}
        for column, kind in PEOPLE_PII.items()
    }

    con = duckdb.connect()
    try:
        cursor = con.execute("SELECT * FROM read_parquet(?) ORDER BY id", [str(snap.parquet_files[0])])
        names = [d[0] for d in cursor.description]
        got = cursor.fetchall()
    finally:
        con.close()
    assert names == [c["name"] for c in expected_columns]
    # literal vectors, not tongban.common.pii's own output: each value's normal form and mask written out by
    # hand, the pseudonym an HMAC-SHA256 computed here (a normalisation bug shared by the publishing
    # SQL and tongban.common.pii cannot hide)
    def hmac_hex(kind: str, normal: str) -> str:
        return hmac.new(PII_KEY, f"{kind}\x1f{normal}".encode(), hashlib.sha256).hexdigest()

    kinds = ["name", "name", "id_number", "id_number", "phone"]  # PEOPLE's columns 1-5
    literal = [  # (normal form, mask) per column; None for NULL
        [("欧阳娜娜", "欧阳**"), ("张三", "张*"), ("31010119900307123X", "310***********123X"),
         ("310101196501011234", "310***********1234"), ("13812341234", "138****1234")],
        [("李四", "李*"), ("王五", "王*"), ("32010219950101002X", "320***********002X"),
         ("31010119900307123X", "310***********123X"), ("057188217800", "0571-****7800")],
        [("赵六", "赵*"), None, ("340103200001011111", "340***********1111"), None, None],
    ]
    expected = [[(hmac_hex(kind, v[0]), v[1]) if v else (None, None) for kind, v in zip(kinds, vectors, strict=True)]
                for vectors in literal]
    assert got == [(person[0], *[x for pair in pairs for x in pair], person[6])
                   for person, pairs in zip(PEOPLE, expected, strict=True)]
    # and tongban.common.pii's Python functions agree with the vectors
    assert [[(pseudonym(kind, value, PII_KEY), mask(kind, value)) for kind, value in zip(kinds, person[1:6], strict=True)]
            for person in PEOPLE] == expected
    assert got[0][2] == "欧阳**" and got[0][6] == "310***********123X" and got[1][10] == "0571-****7800"
    assert got[2][3] is None and got[2][4] is None  # NULL in, NULL out
    # the mother of row 2 is the child of row 1: the pseudonyms join, the masked forms agree
    assert got[1][7] == got[0][5] and got[1][8] == got[0][6]
    # a name and an ID number never share a pseudonym, even for equal text
    assert pseudonym("name", "31010119900307123X", PII_KEY) != got[0][5]

    rebuild_catalog(root)
    needles = raw_pii_values()
    assert find_leaks([snap.path], needles) == []
    assert find_leaks([root], needles) == []  # snapshots, manifests and the rebuilt catalog's views
    assert rows_of(root, "SELECT count(*) FROM births WHERE child_name_masked = '欧阳**'") == [(1,)]
    # positive control: the scanner does see the raw values in the warehouse
    assert {leak.needle for leak in find_leaks([warehouse], needles, limit=1000)} == set(needles)


def test_publish_pseudonyms_are_stable_across_runs_and_keyed(root: Path, warehouse: Path) -> None:
    write_people(warehouse)
    v1 = publish_people(root, warehouse)
    v2 = publish_people(root, warehouse)
    v3 = publish_people(root, warehouse, pseudonym_key=b"another-key-0123456789abcdef0123456789")
    sql = "SELECT id_number_pseudonym FROM read_parquet(?) ORDER BY id"
    con = duckdb.connect()
    try:
        first, second, other = (con.execute(sql, [str(s.parquet_files[0])]).fetchall() for s in (v1, v2, v3))
    finally:
        con.close()
    assert first == second and first != other


def test_publish_without_pii_is_unchanged_and_records_no_pii(root: Path, warehouse: Path) -> None:
    snap = publish_snapshot(
        root, entity="orgs", warehouse_path=warehouse, relation="marts.orgs", run_id="run-1",
        standard_version="x", pii={},
    )
    manifest = json.loads((snap.path / "_manifest.json").read_text(encoding="utf-8"))
    assert manifest["pii"] == {}
    assert [c["name"] for c in manifest["columns"]] == ["id", "name", "province_code"]


def test_publish_pii_column_names_match_case_insensitively(root: Path, warehouse: Path) -> None:
    write_people(warehouse)
    snap = publish_people(root, warehouse, pii={"ID_Number": "id_number"})
    manifest = json.loads((snap.path / "_manifest.json").read_text(encoding="utf-8"))
    assert manifest["pii"] == {"id_number": {"kind": "id_number",
                                             "columns": ["id_number_pseudonym", "id_number_masked"]}}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pii": {"passport": "id_number"}}, "'passport' not in"),
        ({"pseudonym_key": None}, "needs a pseudonym_key"),
        ({"pseudonym_key": b"short"}, "at least 32"),
        ({"pii": {"phone": "telephone"}}, "unknown kind 'telephone'"),
        ({"pii": {"phone; drop": "phone"}}, "invalid pii column name"),
        ({"pii": {"phone": "phone", "PHONE": "phone"}}, "listed twice"),
    ],
)
def test_publish_with_bad_pii_arguments_is_refused(
    root: Path, warehouse: Path, kwargs: dict, message: str
) -> None:
    write_people(warehouse)
    with pytest.raises(ValueError, match=re.escape(message)):
        publish_people(root, warehouse, **kwargs)
    assert current_snapshots(root) == {}
    assert not (root / "births").exists() or list((root / "births").iterdir()) == []


def test_publish_refuses_pii_output_names_that_collide(root: Path, tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    con = duckdb.connect(str(path))
    try:
        con.execute("CREATE SCHEMA marts")
        con.execute("CREATE TABLE marts.births AS SELECT 'x' AS phone, 'y' AS phone_masked")
    finally:
        con.close()
    with pytest.raises(ValueError, match="'phone_masked' twice"):
        publish_people(root, path, pii={"phone": "phone"})
    assert current_snapshots(root) == {}


def test_publish_with_pii_leaves_no_udf_behind_on_a_shared_connection(root: Path, warehouse: Path) -> None:
    write_people(warehouse)
    other = duckdb.connect(str(warehouse), read_only=True)  # same DuckDB instance as publication's
    try:
        publish_people(root, warehouse)
        publish_people(root, warehouse)  # fresh UDF names: no clash with the first publication
        left = other.execute(
            "SELECT function_name FROM duckdb_functions() WHERE function_name LIKE '%tongban%'"
        ).fetchall()
    finally:
        other.close()
    assert left == []
