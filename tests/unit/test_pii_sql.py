"""The vectorised pseudonym (DuckDB sha256 over the HMAC key blocks, for plain ASCII/CJK text;
the Python UDF for anything else) equals tongban.common.pii.pseudonym for every value."""

from __future__ import annotations

import random

import duckdb
import pytest

from tongban.common import pii

KEY = b"a-test-key-that-is-long-enough-0123456789"
FIXED = [None, "", " ", "\t", "张三", " 张三 ", "欧阳娜娜", "310101199001011234", "31010119900101123x",
         " 31010119900101123X ", "３１０１０１１９９００１０１１２３Ｘ", "138-1234-5678", "+86 138 1234 5678",
         "(0571)88217800", "０５７１－８８２１７８００", "张\u3000三", "\u3000张三", "ｱｲ", "丽江", "豈", "a\tb",
         "N2340603MA2PBMYMXK", "O310000123", "无电话", "12", "-"]


def _random_values(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    alphabet = ("0123456789Xx -()+" "张王李赵欧阳娜丽华国强" "０１２３Ｘ\u3000\t" "ｱ豈é")
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20))) for _ in range(n)]


@pytest.mark.parametrize("kind", pii.PII_KINDS)
def test_sql_pseudonym_equals_python(kind: str):
    values = FIXED + _random_values(600, seed=len(kind))
    con = duckdb.connect()
    pii.register_udfs(con, KEY, names=("_p", "_m"))
    pii.create_pads_table(con, "pads_t", KEY)
    con.execute("create table v as select unnest(?::varchar[]) as value, generate_subscripts(?::varchar[], 1) as i",
                [values, values])
    got = con.execute(f"select {pii.pseudonym_sql(kind, 'v.value', 'pads', '_p')} from v cross join pads_t as pads "
                      f"order by i").fetchall()
    expected = [pii.pseudonym(kind, v, KEY) for v in values]
    mismatches = [(v, g[0], e) for v, g, e in zip(values, got, expected, strict=True) if g[0] != e]
    assert not mismatches, mismatches[:5]


def test_the_key_never_appears_in_the_sql():
    sql = pii.pseudonym_sql("id_number", "x", "pads", "_p")
    assert KEY.decode() not in sql and "pads.ipad" in sql


@pytest.mark.parametrize("kind", pii.PII_KINDS)
def test_sql_mask_equals_python(kind: str):
    names = ["张", "张三", "欧阳娜娜", "欧阳", "司马光", "John", "王 小明", "  李四  "]
    phones = ["13812345678", "8613812345678", "008613812345678", "010-12345678", "0571-88217800",
              "02112345678", "1234", "12345", "电话", "(021)5555 6666"]
    values = FIXED + names + phones + _random_values(600, seed=7 + len(kind))
    con = duckdb.connect()
    pii.register_udfs(con, KEY, names=("_p", "_m"))
    con.execute("create table v as select unnest(?::varchar[]) as value, generate_subscripts(?::varchar[], 1) as i",
                [values, values])
    got = con.execute(f"select {pii.mask_sql(kind, 'v.value', '_m')} from v order by i").fetchall()
    expected = [pii.mask(kind, v) for v in values]
    mismatches = [(v, g[0], e) for v, g, e in zip(values, got, expected, strict=True) if g[0] != e]
    assert not mismatches, mismatches[:5]
    # the plain values take the SQL path: with a UDF that always fails they still mask
    plain = [v for v in values if v is not None and all(c == " " or "!" <= c <= "~" or "\u4e00" <= c <= "\u9fff"
                                                        for c in v)]
    con.create_function("_boom", lambda k, v: 1 / 0, [str, str], str)
    con.execute("create table p as select unnest(?::varchar[]) as value", [plain])
    assert len(con.execute(f"select {pii.mask_sql(kind, 'value', '_boom')} from p").fetchall()) == len(plain)
