"""tongban.common.sqlquote: the only way configuration-supplied names and paths enter SQL text."""

from __future__ import annotations

import duckdb
import pytest

from tongban.common.sqlquote import (
    check_ident,
    has_jinja,
    is_identifier,
    JINJA_OPENERS,
    quote_ident,
    quote_literal,
    quote_qualified,
)


@pytest.mark.parametrize("name", ["a", "_x", "A1_b", "orders", "select", "x" * 128, "ABC_123"])
def test_quote_ident_accepts_plain_identifiers(name: str) -> None:
    assert quote_ident(name) == f'"{name}"'
    assert is_identifier(name)
    assert check_ident(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "1a",
        "a b",
        "a-b",
        "a.b",
        'a"; drop table x; --',
        'a"',
        '"a"',
        "a'",
        "a;",
        "a--",
        "a/*",
        "a\n",
        "a\x00",
        " a",
        "表",  # ASCII identifiers only
        "省份代码",
        "café",
        "ａ",  # full-width latin
        "x" * 129,
    ],
)
def test_quote_ident_rejects_everything_else(name: str) -> None:
    assert not is_identifier(name)
    with pytest.raises(ValueError, match=r"^invalid identifier .*: expected an ASCII identifier matching"):
        quote_ident(name)


@pytest.mark.parametrize("name", [None, 1, b"abc", ["a"]])
def test_quote_ident_rejects_non_strings(name: object) -> None:
    with pytest.raises(ValueError, match=r"^invalid identifier .*: expected an ASCII identifier matching"):
        quote_ident(name)  # type: ignore[arg-type]


def test_quote_ident_error_names_the_offender() -> None:
    with pytest.raises(ValueError, match="entity name"):
        check_ident("a b", what="entity name")


def test_quoted_identifiers_work_in_duckdb_including_keywords() -> None:
    con = duckdb.connect()
    try:
        for name in ["select", "from", "Order_1", "_t"]:
            con.execute(f"CREATE TABLE {quote_ident(name)} ({quote_ident('group')} INTEGER)")
            con.execute(f"INSERT INTO {quote_ident(name)} VALUES (?)", [7])
            assert con.execute(f"SELECT {quote_ident('group')} FROM {quote_ident(name)}").fetchall() == [(7,)]
    finally:
        con.close()


def test_quote_qualified() -> None:
    assert quote_qualified("main.orders") == '"main"."orders"'
    assert quote_qualified("db.main.orders", parts=3) == '"db"."main"."orders"'
    for bad in ["orders", "a.b.c", "a.", ".b", "a..b", 'a.b"; drop table x; --', "a.b c", None]:
        with pytest.raises(ValueError, match=r"^invalid (qualified name|identifier) "):
            quote_qualified(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value, expected",
    [
        ("", "''"),
        ("abc", "'abc'"),
        ("it's", "'it''s'"),
        ("''", "''''''"),
        ("a\\b", "'a\\b'"),
        ("/tmp/上海/x.parquet", "'/tmp/上海/x.parquet'"),
    ],
)
def test_quote_literal(value: str, expected: str) -> None:
    assert quote_literal(value) == expected


@pytest.mark.parametrize(
    "payload",
    [
        "'; DROP TABLE victim; --",
        "x' OR '1'='1",
        "\\'; DROP TABLE victim; --",
        "a\"b'c\\d",
        "line1\nline2'",
        "/data/it's/part-0.parquet",
        "浙江省'; --",
    ],
)
def test_quote_literal_round_trips_injection_attempts(payload: str) -> None:
    con = duckdb.connect()
    try:
        con.execute("CREATE TABLE victim (i INTEGER)")
        assert con.execute(f"SELECT {quote_literal(payload)}").fetchall() == [(payload,)]
        # the table is still there
        assert con.execute("SELECT count(*) FROM victim").fetchone() == (0,)
    finally:
        con.close()


def test_quote_literal_rejects_nul_and_non_strings() -> None:
    with pytest.raises(ValueError, match="^string literal must not contain NUL characters$"):
        quote_literal("a\x00b")
    for bad in [None, 1, b"x"]:
        with pytest.raises(TypeError, match=f"^quote_literal expects str, got {type(bad).__name__}$"):
            quote_literal(bad)  # type: ignore[arg-type]


# ---- inert under Jinja: dbt runs Jinja over every generated model before DuckDB sees it ----

@pytest.mark.parametrize("value", ['{{ env_var("K") }}', "{% do run_query('x') %}", "{# c #}", "a{{b", "{{{",
                                   "it's {{x}}", "{%", "x{#"])
def test_quote_literal_is_inert_under_jinja_and_reads_back(value: str) -> None:
    text = quote_literal(value)
    assert not [o for o in JINJA_OPENERS if o in text], text
    assert text.startswith("('") and text.endswith("')")  # one parenthesised expression
    con = duckdb.connect()
    assert con.execute(f"select {text}").fetchone()[0] == value
    # a cast after it applies to the whole value, not to its last piece
    assert con.execute(f"select {text}::varchar || '!'").fetchone()[0] == value + "!"


def test_plain_text_stays_one_literal_byte_for_byte() -> None:
    assert quote_literal("a{b}%#") == "'a{b}%#'"
    assert quote_literal("o'neil") == "'o''neil'"
    assert quote_literal("") == "''"


@pytest.mark.parametrize("text,expected", [("{{", True), ("{%", True), ("{#", True), ("{ {", False),
                                           ("}}", False), ("{x}", False), ("", False), ("a{#", True)])
def test_has_jinja(text: str, expected: bool) -> None:
    assert has_jinja(text) is expected
