"""tests/leaks.py, the tests' leak scanner: raw personal values are found wherever a consumer-facing
file can hold them (Parquet columns and metadata, DuckDB tables, views and definitions, text in any of
its encodings), never falsely, and never shown raw."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import duckdb
import pytest

from tests.leaks import Leak, LeakScanError, find_leaks
from tongban.common import pii

_CJK = "张王李赵刘陈杨黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段漕钱汤尹黎易常武乔贺赖龚文娜伟芳敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红"  # noqa: E501

RAW_ID = "31010119900307123X"
RAW_NAME = "欧阳娜娜"
RAW_PHONE = "13812341234"
NEEDLES = [RAW_ID, RAW_NAME, RAW_PHONE]


def _parquet(path: Path, rows: list[tuple]) -> Path:
    con = duckdb.connect(":memory:")
    try:
        con.execute("CREATE TABLE t (id INTEGER, note VARCHAR, masked VARCHAR)")
        con.executemany("INSERT INTO t VALUES (?, ?, ?)", rows)
        con.execute(f"COPY t TO '{path}' (FORMAT parquet, COMPRESSION zstd)")
    finally:
        con.close()
    return path


CLEAN_ROWS = [(1, "上海市浦东新区", "310***********123X"), (2, "欧阳**", "138****1234")]


def test_find_leaks_clean_directory(tmp_path: Path) -> None:
    _parquet(tmp_path / "a.parquet", CLEAN_ROWS)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.html").write_text("<td>310***********123X</td><td>欧*</td>", encoding="utf-8")
    (tmp_path / "docs" / "report.json").write_text(json.dumps({"masked": "138****1234"}), encoding="utf-8")
    (tmp_path / "gbk.txt").write_bytes("姓名：欧阳**".encode("gbk"))
    assert find_leaks([tmp_path], NEEDLES) == []


def test_find_leaks_in_parquet_column(tmp_path: Path) -> None:
    path = _parquet(tmp_path / "x.parquet", [*CLEAN_ROWS, (3, f"母亲 {RAW_NAME} 电话+86{RAW_PHONE}", "x")])
    leaks = find_leaks([tmp_path], NEEDLES)
    assert {(leak.path, leak.where, leak.needle) for leak in leaks} >= {
        (path, "column note", RAW_NAME),
        (path, "column note", RAW_PHONE),
    }
    assert RAW_ID not in {leak.needle for leak in leaks}


def test_find_leaks_in_duckdb_view_over_parquet_and_in_tables(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    parquet = _parquet(tmp_path / "data" / "p.parquet", [(1, f"id={RAW_ID}", "x")])
    db = tmp_path / "catalog.duckdb"
    con = duckdb.connect(str(db))
    try:
        con.execute(f"CREATE VIEW births AS SELECT * FROM read_parquet('{parquet}')")
        con.execute("CREATE SCHEMA side")
        con.execute("CREATE TABLE side.people (n VARCHAR, b BLOB)")
        con.execute("INSERT INTO side.people VALUES ('欧阳**', ?)", [f"x{RAW_PHONE}".encode("gbk")])
        con.execute(f"CREATE VIEW literal AS SELECT 1 AS one WHERE '{RAW_NAME}' <> ''")
    finally:
        con.close()
    leaks = find_leaks([db], NEEDLES)
    found = {(leak.where, leak.needle) for leak in leaks}
    assert ("view main.births column id", RAW_ID) not in found  # the value is in column note
    assert ("view main.births column note", RAW_ID) in found
    assert ("table side.people column b", RAW_PHONE) in found
    assert ("view main.literal definition", RAW_NAME) in found
    assert all(leak.path == db for leak in leaks)


def test_find_leaks_in_duckdb_file_open_read_write_elsewhere(tmp_path: Path) -> None:
    db = tmp_path / "warehouse.duckdb"
    writer = duckdb.connect(str(db))
    try:
        writer.execute("CREATE TABLE t AS SELECT ? AS id", [RAW_ID])
        writer.execute("CHECKPOINT")
        leaks = find_leaks([db], NEEDLES)
    finally:
        writer.close()
    assert ("table main.t column id", RAW_ID) in {(leak.where, leak.needle) for leak in leaks}


@pytest.mark.parametrize(
    ("name", "content", "where"),
    [
        ("docs/index.html", f"<html><td>{RAW_ID}</td></html>".encode(), "text (utf-8)"),
        (
            "validations/run.json",
            json.dumps({"unexpected": [RAW_NAME]}, ensure_ascii=False).encode(),
            "text (utf-8)",
        ),
        (
            "validations/ascii.json",
            json.dumps({"unexpected": [RAW_NAME]}).encode(),
            "text (utf-8, \\u-unescaped)",
        ),
        ("docs/entities.html", b"<td>&#27431;&#x9633;&#23068;&#23068;</td>", "text (utf-8, HTML-unescaped)"),
        (
            "docs/link.html",
            b'<a href="?q=%E6%AC%A7%E9%98%B3%E5%A8%9C%E5%A8%9C">',
            "text (utf-8, URL-decoded)",
        ),
        ("logs/run.log", f"reason: 母亲姓名 {RAW_NAME}\n".encode("gbk"), "text (gb18030)"),
        ("logs/u16.txt", f"{RAW_PHONE}".encode("utf-16"), "text (utf-16)"),
    ],
)
def test_find_leaks_in_text_files(tmp_path: Path, name: str, content: bytes, where: str) -> None:
    path = tmp_path / name
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    leaks = find_leaks([tmp_path], NEEDLES)
    assert [(leak.path, leak.where) for leak in leaks] == [(path, where)]


def test_leak_repr_masks_the_needle(tmp_path: Path) -> None:
    leak = Leak(tmp_path / "x", "text (utf-8)", RAW_ID)
    assert RAW_ID not in repr(leak) and RAW_ID not in str(leak)
    assert "310***********123X" in repr(leak)


def test_find_leaks_limit_and_needle_rules(tmp_path: Path) -> None:
    for i in range(5):
        (tmp_path / f"{i}.txt").write_text(RAW_ID)
    assert len(find_leaks([tmp_path], NEEDLES, limit=3)) == 3
    (tmp_path / "single.txt").write_text("欧")
    assert find_leaks([tmp_path / "single.txt"], ["欧", RAW_ID]) == []  # one character: skipped
    with pytest.raises(ValueError, match="no needles"):
        find_leaks([tmp_path], ["欧", None, "  "])  # type: ignore[list-item]
    with pytest.raises(LeakScanError, match="nothing to scan at .*missing"):
        find_leaks([tmp_path / "missing"], NEEDLES)
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    with pytest.raises(LeakScanError, match="broken.parquet"):
        find_leaks([tmp_path / "broken.parquet"], NEEDLES)


def test_find_leaks_searches_the_nfkc_form_of_needles(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text(f"id {RAW_ID}")
    leaks = find_leaks([tmp_path], [" ３１０１０１１９９００３０７１２３Ｘ "])
    assert [leak.needle for leak in leaks] == [RAW_ID]


def test_find_leaks_among_many_needles_finds_only_the_planted_ones(tmp_path: Path) -> None:
    """20,000 IDs hashed and masked in a Parquet file, 2,000 needles: none is a false hit, and the two
    planted in a text file are both found (how long it takes is not a test's business)."""
    rng = random.Random(7)
    ids = [str(rng.randrange(10**17, 10**18)) for _ in range(50_000)]
    con = duckdb.connect(":memory:")
    try:
        con.execute("CREATE TABLE t (h VARCHAR, m VARCHAR)")
        con.executemany(
            "INSERT INTO t VALUES (?, ?)",
            [(hashlib.sha256(i.encode()).hexdigest(), pii.mask("id_number", i)) for i in ids[:20_000]],
        )
        con.execute(f"COPY t TO '{tmp_path / 'big.parquet'}' (FORMAT parquet)")
    finally:
        con.close()
    needles = ids[:1000] + ["".join(rng.choice(_CJK) for _ in range(3)) for _ in range(1000)]
    assert find_leaks([tmp_path], needles) == []
    (tmp_path / "planted.txt").write_text("x" * 1000 + ids[500] + needles[1500])
    assert {leak.needle for leak in find_leaks([tmp_path], needles)} == {ids[500], needles[1500]}
