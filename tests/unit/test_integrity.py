"""Never trust a file on disk (a part changed after publication is found, named and written again
from the warehouse), a province keeps its last good publication, and whatever a killed run left
uncommitted is removed (tongban.exchange.integrity, exchange.publish_snapshot(keep=))."""

from __future__ import annotations

import json
import os
from pathlib import Path

import duckdb
import pytest

from tongban import exchange
from tongban.exchange import integrity

KW = dict(entity="t", relation="main.t", standard_version="1", partition_by="source_id")


def _warehouse(path: Path, rows: list[tuple]) -> Path:
    with duckdb.connect(str(path)) as con:
        con.execute("create or replace table t (source_id varchar, n integer, v varchar)")
        if rows:
            con.executemany("insert into t values (?, ?, ?)", rows)
    return path


def _rows(root: Path, sql: str = "select source_id, n, v from t order by all") -> list[tuple]:
    return exchange.query(root, sql)[1]


def _tamper(part: Path) -> None:
    """What `COPY ... TO` through the old query path did: the part replaced by other rows."""
    tmp = part.with_name("tamper.parquet")
    with duckdb.connect() as con:
        con.execute(f"copy (select 'b' as source_id, 666 as n, 'tampered' as v) to '{tmp}' (format parquet)")
    os.replace(tmp, part)


@pytest.fixture
def published(tmp_path: Path) -> tuple[Path, Path]:
    wh = _warehouse(tmp_path / "w.duckdb", [("a", 1, "x"), ("b", 2, "y")])
    root = tmp_path / "exchange"
    exchange.publish_snapshot(root, warehouse_path=wh, run_id="r1", content_key="k1", **KW)
    exchange.rebuild_catalog(root)
    return root, wh


def test_verify_names_a_changed_part_and_an_intact_exchange_has_no_problems(published):
    root, _ = published
    assert integrity.verify(root) == []
    _tamper(root / "t" / "v1" / "part-b.parquet")
    problems = integrity.verify(root)
    assert len(problems) == 1 and problems[0].startswith("t/v1/part-b.parquet: sha256 ")
    (root / "t" / "v1" / "part-a.parquet").unlink()
    assert "t/v1/part-a.parquet: missing" in integrity.verify(root)


@pytest.mark.parametrize("content_key", ["k1", None], ids=["linked-whole-by-key", "compared-by-content"])
def test_a_changed_part_is_never_reused_and_is_written_again(published, content_key):
    """Nothing was delivered again (same key, same rows): the tampered part is still not linked
    into the next snapshot, which carries the warehouse's rows; the problem is named."""
    root, wh = published
    _tamper(root / "t" / "v1" / "part-b.parquet")
    snap = exchange.publish_snapshot(root, warehouse_path=wh, run_id="r2", content_key=content_key, **KW)
    exchange.rebuild_catalog(root)
    assert [p for p in snap.problems if p.startswith("t/v1/part-b.parquet: sha256")]
    assert _rows(root) == [("a", 1, "x"), ("b", 2, "y")]
    parts = {p["value"]: p for p in json.loads((snap.path / "_manifest.json").read_text())["parts"]}
    assert parts["a"]["reused_from"] == 1 and "reused_from" not in parts["b"]
    assert integrity.verify(root) == []


def test_a_kept_source_carries_its_previous_part(published):
    """The delivery of b was rejected: the warehouse has none of its rows, and b's last good
    part is carried over (verified); a's new rows are published."""
    root, wh = published
    _warehouse(wh, [("a", 10, "new")])
    snap = exchange.publish_snapshot(root, warehouse_path=wh, run_id="r2", keep=["b"], **KW)
    exchange.rebuild_catalog(root)
    assert snap.kept == ("b",) and snap.problems == ()
    assert _rows(root) == [("a", 10, "new"), ("b", 2, "y")]
    assert snap.rows == 2
    # all sources rejected: nothing in the warehouse, both kept, no empty placeholder part
    _warehouse(wh, [])
    snap = exchange.publish_snapshot(root, warehouse_path=wh, run_id="r3", keep=["a", "b"], **KW)
    assert sorted(p.name for p in snap.parquet_files) == ["part-a.parquet", "part-b.parquet"]
    # a source never published before has nothing to keep
    snap = exchange.publish_snapshot(root, warehouse_path=wh, run_id="r4", keep=["a", "b", "c"], **KW)
    assert snap.kept == ("a", "b")


def test_a_tampered_part_is_not_kept(published):
    root, wh = published
    _tamper(root / "t" / "v1" / "part-b.parquet")
    _warehouse(wh, [("a", 1, "x")])
    snap = exchange.publish_snapshot(root, warehouse_path=wh, run_id="r2", keep=["b"], **KW)
    assert snap.kept == () and any("part-b.parquet: sha256" in p for p in snap.problems)


def test_recover_removes_what_the_catalog_does_not_name(published):
    """A run killed before its catalog swap left a snapshot version, a run record, a dictionary
    and temporary files: none was published, all go; what the catalog names stays."""
    root, wh = published
    exchange.record_run(root, "r1", [{"entity": "t", "source_id": "a", "status": "published"}])
    exchange.rebuild_catalog(root, dictionary="r1")
    (root / "_dictionary" / "r1").mkdir(parents=True)
    (root / "_dictionary" / "r1" / "index.html").write_text("r1", encoding="utf-8")
    integrity.link_dictionary(root, "r1")
    # the killed run
    exchange.publish_snapshot(root, warehouse_path=wh, run_id="r2", **KW)
    exchange.record_run(root, "r2", [{"entity": "t", "source_id": "a", "status": "published"}])
    (root / "_dictionary" / "r2").mkdir()
    (root / "t" / ".v3.tmp-0a1b2c").mkdir()
    (root / "catalog.duckdb.tmp-0a1b2c").write_bytes(b"half")
    (root / ".dictionary.new-xyz").mkdir()
    removed = integrity.recover(root)
    assert sorted(removed) == sorted(["t/v2", "_runs/r2.parquet", "_dictionary/r2", "t/.v3.tmp-0a1b2c",
                                      "catalog.duckdb.tmp-0a1b2c", ".dictionary.new-xyz"])
    assert [s.version for s in exchange.list_snapshots(root)] == [1]
    assert _rows(root, "select run_id from exchange_runs") == [("r1",)]
    assert (root / "dictionary" / "index.html").read_text(encoding="utf-8") == "r1"
    assert integrity.recover(root) == []  # nothing left to do


def test_the_dictionary_link_is_replaced_not_removed(tmp_path: Path):
    root = tmp_path / "exchange"
    (root / "dictionary").mkdir(parents=True)  # a dictionary from before it was versioned
    for name in ("r1", "r2"):
        (root / "_dictionary" / name).mkdir(parents=True)
        (root / "_dictionary" / name / "index.html").write_text(name, encoding="utf-8")
    integrity.link_dictionary(root, "r1")
    assert os.readlink(root / "dictionary") == "_dictionary/r1"
    integrity.link_dictionary(root, "r2")
    assert (root / "dictionary" / "index.html").read_text(encoding="utf-8") == "r2"
