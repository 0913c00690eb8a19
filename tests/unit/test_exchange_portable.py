"""The catalog names its files relative to the exchange directory: a copied exchange opens from
anywhere — with duckdb, with SQLAlchemy + duckdb-engine as a BI tool would, and with tongban's own
read-only door — once DuckDB's ``file_search_path`` is the copy's directory."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa

from tests.unit.test_exchange import V1_ROWS, write_warehouse
from tongban.exchange import connect_catalog, publish_snapshot, rebuild_catalog, record_run

EXPECTED = {"orgs": 2, "by_province": 2, "exchange_runs": 1, "exchange_snapshots": 2}


@pytest.fixture
def copied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An exchange built in ``original/``, copied to ``mounted/exchange/``; the original is then moved
    away (an absolute path to it no longer resolves) and the working directory is a third one."""
    original = tmp_path / "original"
    warehouse = tmp_path / "warehouse.duckdb"
    write_warehouse(warehouse, V1_ROWS)
    common = {"warehouse_path": warehouse, "relation": "marts.orgs", "run_id": "run-1", "standard_version": "1"}
    publish_snapshot(original, entity="orgs", **common)
    publish_snapshot(original, entity="by_province", partition_by="province_code", **common)
    record_run(original, "run-1", [{"entity": "orgs", "status": "published"}])
    rebuild_catalog(original)
    copy = tmp_path / "mounted" / "exchange"
    shutil.copytree(original, copy, symlinks=True)
    original.rename(tmp_path / "gone")
    third = tmp_path / "elsewhere"
    # a decoy in the working directory, at the path the catalog names: it must never be read
    (third / "orgs" / "v1").mkdir(parents=True)
    duckdb.sql(f"COPY (SELECT 666 AS id) TO '{third / 'orgs' / 'v1' / 'part-0.parquet'}' (FORMAT parquet)")
    monkeypatch.chdir(third)
    return copy


def read_everything(con) -> dict[str, int]:
    names = [r[0] for r in con.execute(
        "SELECT view_name FROM duckdb_views() WHERE NOT internal AND database_name = current_database() "
        "UNION ALL SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
        "AND table_name <> 'exchange_commit'").fetchall()]
    return {name: con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in names}


def test_duckdb_opens_the_copied_catalog_from_another_directory(copied: Path) -> None:
    con = duckdb.connect(str(copied / "catalog.duckdb"), read_only=True, config={"file_search_path": str(copied)})
    try:
        assert read_everything(con) == EXPECTED
        assert sorted(con.execute("SELECT id FROM orgs").fetchall()) == [(1,), (2,)]  # not the decoy
        assert con.execute("SELECT path FROM exchange_snapshots ORDER BY entity").fetchall() == [
            ("by_province/v1",), ("orgs/v1",)]
    finally:
        con.close()


def test_sqlalchemy_with_duckdb_engine_opens_it_as_a_bi_tool_would(copied: Path) -> None:
    engine = sa.create_engine(f"duckdb:///{copied / 'catalog.duckdb'}",
                              connect_args={"read_only": True, "config": {"file_search_path": str(copied)}})
    try:
        with engine.connect() as con:
            views = sa.inspect(con).get_view_names()
            assert set(views) == {"orgs", "by_province", "exchange_runs"}
            counts = {v: con.execute(sa.text(f'SELECT count(*) FROM "{v}"')).scalar_one() for v in views}
            counts["exchange_snapshots"] = con.execute(sa.text("SELECT count(*) FROM exchange_snapshots")).scalar_one()
        assert counts == EXPECTED
    finally:
        engine.dispose()


def test_tongbans_read_only_door_and_the_exchange_as_working_directory(copied: Path, monkeypatch) -> None:
    con = connect_catalog(copied)
    try:
        assert read_everything(con) == EXPECTED
    finally:
        con.close()
    # without the setting, from elsewhere: DuckDB looks in the working directory (documented)
    with duckdb.connect(str(copied / "catalog.duckdb"), read_only=True) as con, \
            pytest.raises(duckdb.IOException, match="by_province/v1/part-"):
        con.execute("SELECT count(*) FROM by_province").fetchone()
    monkeypatch.chdir(copied)
    with duckdb.connect("catalog.duckdb", read_only=True) as con:
        assert read_everything(con) == EXPECTED
