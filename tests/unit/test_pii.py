"""tongban.common.pii: pseudonyms, masks (Python and the SQL macro) and key handling (tongban.common.pii_key).

The leak scanner, a test helper (tests/leaks.py), has its tests in test_leaks.py."""

from __future__ import annotations

import hashlib
import hmac
import logging
import random
import re
import stat
import warnings
from pathlib import Path

import duckdb
import pytest

from tongban.common import pii, pii_key
from tongban.common.pii import (
    COMPOUND_SURNAMES,
    KEY_ENV,
    KEY_FILE_ENV,
    PII_KINDS,
    PiiKeyError,
    PiiKeyWarning,
    mask,
    normalise,
    pseudonym,
    pseudonym_key,
    register_udfs,
    sql_ddl,
)

KEY = b"0123456789abcdef0123456789abcdef"
OTHER_KEY = b"fedcba9876543210fedcba9876543210"
ID = "31010119900307123X"


@pytest.fixture
def con():
    con = duckdb.connect(":memory:")
    try:
        yield con
    finally:
        con.close()


@pytest.fixture
def sql_con(con):
    con.execute(sql_ddl())
    return con


def sql_mask(con, kind: str | None, value: str | None) -> str | None:
    return con.execute("SELECT tongban_mask(?, ?)", [kind, value]).fetchone()[0]


# ------------------------------------------------------------------------------------------- mask

MASK_EXAMPLES = [
    ("id_number", "31010119900307123X", "310***********123X"),
    ("id_number", " 31010119900307123x ", "310***********123X"),
    ("id_number", "３１０１０１１９９００３０７１２３Ｘ", "310***********123X"),
    ("id_number", "\u300031010119900307123X\u3000", "310***********123X"),
    ("id_number", "12345678", "123*5678"),
    ("id_number", "1234567", "1******"),
    ("id_number", "1234", "1***"),
    ("id_number", "123", "***"),
    ("licence_number", "91310000MA1FL0XXab", "913***********XXab"),  # other identifiers: no upper-casing
    ("name", "张三", "张*"),
    ("name", "张三丰", "张**"),
    ("name", "欧阳娜娜", "欧阳**"),
    ("name", "欧阳娜", "欧阳*"),
    ("name", "欧阳", "欧*"),
    ("name", "张", "*"),
    ("name", " 李四\u3000", "李*"),
    ("name", "John Smith", "J*********"),
    ("phone", "13812341234", "138****1234"),
    ("phone", "138-1234-1234", "138****1234"),
    ("phone", "+86 138 1234 1234", "138****1234"),
    ("phone", "１３８１２３４１２３４", "138****1234"),
    ("phone", "0571-88217800", "0571-****7800"),
    ("phone", "(0571) 8821780", "0571-***1780"),
    ("phone", "021-62345678", "021-****5678"),
    ("phone", "01062345678", "010-****5678"),
    ("phone", "12345", "*2345"),
    ("phone", "0571-88217800-123", "***********0123"),
    ("phone", "1234", "****"),
    ("phone", "无", "*"),
]


@pytest.mark.parametrize(("kind", "value", "expected"), MASK_EXAMPLES)
def test_mask_examples_python_and_sql(sql_con, kind: str, value: str, expected: str) -> None:
    assert mask(kind, value) == expected
    assert sql_mask(sql_con, kind, value) == expected


@pytest.mark.parametrize("kind", [*PII_KINDS, "other", None])
@pytest.mark.parametrize("value", [None, "", "   ", "\u3000\t\n"])
def test_mask_null_and_blank_give_null(sql_con, kind: str | None, value: str | None) -> None:
    assert mask(kind, value) is None  # type: ignore[arg-type]
    assert sql_mask(sql_con, kind, value) is None


_CJK = "张王李赵刘陈杨黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段漕钱汤尹黎易常武乔贺赖龚文娜伟芳敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红"  # noqa: E501
_SPACES = [" ", "\u3000", "\t", "\xa0", "\u2003", "\n"]


def _fullwidth(text: str, rng: random.Random) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" and rng.random() < 0.3 else c for c in text)


def _pad(text: str, rng: random.Random) -> str:
    left = "".join(rng.choice(_SPACES) for _ in range(rng.randint(0, 2)))
    right = "".join(rng.choice(_SPACES) for _ in range(rng.randint(0, 2)))
    return left + text + right


def _random_values(seed: int) -> list[tuple[str, str | None]]:
    rng = random.Random(seed)
    values: list[tuple[str, str | None]] = []
    for _ in range(150):
        n = rng.choice([1, 2, 2, 3, 3, 4, 5])
        name = "".join(rng.choice(_CJK) for _ in range(n))
        if rng.random() < 0.2:
            name = rng.choice(COMPOUND_SURNAMES) + name
        if rng.random() < 0.1:
            name = rng.choice(["Li Na", "O'Brien", "Zhang San", "a"])
        values.append(("name", _pad(_fullwidth(name, rng), rng)))
    for _ in range(150):
        length = rng.choice([18, 18, 18, 15, 10, 8, 7, 5, 4, 3, 2, 1, 20])
        text = "".join(rng.choice("0123456789") for _ in range(length - 1)) + rng.choice("0123456789xX")
        values.append(
            (rng.choice(["id_number", "id_number", "licence_number"]), _pad(_fullwidth(text, rng), rng))
        )
    for _ in range(150):
        digits = rng.choice(
            [
                "1" + "".join(rng.choice("0123456789") for _ in range(10)),
                "86" + "1" + "".join(rng.choice("0123456789") for _ in range(10)),
                rng.choice(["010", "021", "025", "0571", "0512", "0551"])
                + "".join(rng.choice("0123456789") for _ in range(rng.choice([7, 8]))),
                "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 14))),
            ]
        )
        sep = rng.choice(["", "-", " ", "(", ")", "+"])
        text = "".join(c + (sep if rng.random() < 0.15 else "") for c in digits) or rng.choice(
            ["无", "n/a", ""]
        )
        values.append(("phone", _pad(_fullwidth(text, rng), rng)))
    values += [(kind, None) for kind in PII_KINDS] + [(kind, "") for kind in PII_KINDS]
    values += [(kind, " \u3000 ") for kind in PII_KINDS]
    return values


@pytest.mark.parametrize("seed", [1, 2])
def test_sql_macro_equals_python_mask_on_random_values(sql_con, seed: int) -> None:
    values = _random_values(seed)
    sql_con.execute("CREATE TABLE v (i INTEGER, kind VARCHAR, value VARCHAR)")
    sql_con.executemany("INSERT INTO v VALUES (?, ?, ?)", [(i, k, v) for i, (k, v) in enumerate(values)])
    got = sql_con.execute("SELECT tongban_mask(kind, value) FROM v ORDER BY i").fetchall()
    differences = [
        (kind, value, mask(kind, value), sql)
        for (kind, value), (sql,) in zip(values, got, strict=True)
        if mask(kind, value) != sql
    ]
    assert differences == []
    assert len(values) > 450


def test_sql_macro_knows_every_compound_surname(sql_con) -> None:
    listed = re.search(r"list_contains\(\[(.*?)\]", sql_ddl(), re.S)
    assert listed is not None
    assert sorted(re.findall(r"'([^']+)'", listed.group(1))) == sorted(COMPOUND_SURNAMES)
    for surname in COMPOUND_SURNAMES:
        assert sql_mask(sql_con, "name", surname + "某某") == mask("name", surname + "某某") == surname + "**"


def test_sql_ddl_is_plain_sql_inside_the_dbt_macro() -> None:
    ddl = sql_ddl()
    assert ddl.startswith("create or replace macro tongban_mask(kind, value)")
    for jinja in ("{{", "{%", "{#", "%}", "#}", "}}"):
        assert jinja not in ddl
    assert "->" not in ddl  # DuckDB 2.0 lambdas are `lambda x: expr`


def test_sql_macro_works_from_another_schema(con) -> None:
    con.execute("CREATE SCHEMA harmonized")
    con.execute("USE harmonized")
    con.execute(sql_ddl())
    con.execute("USE memory.main")
    assert con.execute("SELECT harmonized.tongban_mask('name', '欧阳娜娜')").fetchone()[0] == "欧阳**"


# ------------------------------------------------------------------------------------------- pseudonym


def test_pseudonym_is_keyed_hmac_sha256_of_kind_and_normalised_value() -> None:
    expected = hmac.new(KEY, f"id_number\x1f{ID}".encode(), hashlib.sha256).hexdigest()
    assert pseudonym("id_number", ID, KEY) == expected
    assert re.fullmatch(r"[0-9a-f]{64}", expected)
    assert expected != hashlib.sha256(ID.encode()).hexdigest()
    assert expected != hashlib.sha256(f"id_number\x1f{ID}".encode()).hexdigest()


def test_pseudonym_is_stable_and_depends_on_the_key() -> None:
    assert pseudonym("id_number", ID, KEY) == pseudonym("id_number", ID, KEY)
    assert pseudonym("id_number", ID, KEY) != pseudonym("id_number", ID, OTHER_KEY)
    long_key = b"k" * 100  # longer than the SHA-256 block: hashed first, as HMAC prescribes
    assert (
        pseudonym("name", "张三", long_key)
        == hmac.new(long_key, "name\x1f张三".encode(), "sha256").hexdigest()
    )


def test_pseudonym_normalises_before_hashing() -> None:
    base = pseudonym("id_number", ID, KEY)
    assert pseudonym("id_number", " 31010119900307123x ", KEY) == base
    assert pseudonym("id_number", "\u3000３１０１０１１９９００３０７１２３ｘ", KEY) == base
    assert pseudonym("phone", "138-1234-1234", KEY) == pseudonym("phone", " (138) 1234 1234 ", KEY)
    assert pseudonym("phone", "0571-88217800", KEY) == pseudonym("phone", "057188217800", KEY)
    assert pseudonym("name", " 张三\u3000", KEY) == pseudonym("name", "张三", KEY)


def test_pseudonym_separates_kinds() -> None:
    assert pseudonym("name", "13812341234", KEY) != pseudonym("phone", "13812341234", KEY)
    assert pseudonym("id_number", "13812341234", KEY) != pseudonym("phone", "13812341234", KEY)


@pytest.mark.parametrize("length", [32, 63, 64, 65, 100])
def test_pseudonym_is_rfc_2104_hmac_for_keys_of_any_length(length: int) -> None:
    """Keys longer than SHA-256's 64-byte block are hashed first (RFC 2104): in Python and in the
    vectorised SQL over the key blocks, as ``hmac`` computes it (killed mutants of hmac_pads)."""
    key = bytes(range(48, 48 + length % 64)) + b"k" * (length - length % 64)
    assert len(key) == length
    expected = hmac.new(key, f"id_number\x1f{ID}".encode(), hashlib.sha256).hexdigest()
    assert pseudonym("id_number", ID, key) == expected
    con = duckdb.connect()
    try:
        register_udfs(con, key)  # the SQL falls back to it for text beyond plain ASCII and CJK
        pii.create_pads_table(con, "pads", key)
        sql = pii.pseudonym_sql("id_number", "v", "pads", pii.UDF_NAMES[0])
        assert con.execute(f"SELECT {sql} FROM (SELECT ? AS v) CROSS JOIN pads", [ID]).fetchone()[0] == expected
    finally:
        con.close()


@pytest.mark.parametrize("key", ["0123456789abcdef0123456789abcdef", b""])
def test_pseudonym_refuses_a_key_that_is_not_bytes(key: object) -> None:
    with pytest.raises(PiiKeyError, match="^pseudonym key must be non-empty bytes$"):
        pseudonym("name", "张三", key)  # type: ignore[arg-type]


def test_pads_table_takes_a_key_of_the_minimum_length_and_refuses_shorter_or_text() -> None:
    con = duckdb.connect()
    try:
        pii.create_pads_table(con, "pads", KEY)  # exactly KEY_MIN_LENGTH bytes
        assert len(KEY) == pii.KEY_MIN_LENGTH
        for bad in (KEY[:-1], KEY.decode()):
            with pytest.raises(PiiKeyError, match=f"^pseudonym key must be at least {pii.KEY_MIN_LENGTH} bytes$"):
                pii.create_pads_table(con, "pads", bad)  # type: ignore[arg-type]
    finally:
        con.close()


def test_pseudonym_none_blank_and_unknown_kind() -> None:
    assert pseudonym("name", None, KEY) is None
    assert pseudonym("name", "  ", KEY) is None
    assert pseudonym("phone", "无", KEY) is None  # no digits: nothing to identify
    with pytest.raises(ValueError, match="unknown PII kind 'id'"):
        pseudonym("id", ID, KEY)


def test_normalise() -> None:
    assert normalise("id_number", " 31010119900307123x\u3000") == ID
    assert normalise("phone", "+86 (138) 1234-1234") == "8613812341234"
    assert normalise("phone", "0571-88217800") == "057188217800"
    assert normalise("name", "\u3000张 三 ") == "张 三"
    assert normalise("name", "") is None and normalise("name", None) is None


# ------------------------------------------------------------------------------------------- UDFs


def test_udfs_match_python_and_pass_null_through(con) -> None:
    register_udfs(con, KEY)
    rows = con.execute(
        "SELECT tongban_pseudonym(k, v), tongban_mask(k, v) FROM (VALUES "
        "('id_number', ?), ('name', '欧阳娜娜'), ('phone', '0571-88217800'), ('name', NULL), ('name', ' ')) t(k, v)",
        [ID],
    ).fetchall()
    assert rows == [
        (pseudonym("id_number", ID, KEY), "310***********123X"),
        (pseudonym("name", "欧阳娜娜", KEY), "欧阳**"),
        (pseudonym("phone", "0571-88217800", KEY), "0571-****7800"),
        (None, None),
        (None, None),
    ]


def test_udf_error_names_the_kind_not_the_value(con) -> None:
    register_udfs(con, KEY)
    with pytest.raises(duckdb.Error, match="unknown PII kind 'passport'") as info:
        con.execute("SELECT tongban_pseudonym('passport', ?)", [ID]).fetchall()
    assert "passport" in str(info.value) and ID not in str(info.value)


def test_udfs_refuse_a_short_key_and_can_be_renamed_and_removed(con) -> None:
    with pytest.raises(PiiKeyError, match="pseudonym key must be at least 32 bytes"):
        register_udfs(con, b"short")
    register_udfs(con, KEY, names=("p", "m"))
    assert con.execute("SELECT m('name', '张三')").fetchall() == [("张*",)]
    pii.unregister_udfs(con, names=("p", "m"))
    pii.unregister_udfs(con, names=("p", "m"))  # already gone: ignored
    with pytest.raises(duckdb.CatalogException, match="Scalar Function with name m does not exist"):
        con.execute("SELECT m('name', '张三')")


# ------------------------------------------------------------------------------------------- key


@pytest.fixture
def no_key_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)
    monkeypatch.setattr(pii_key, "_warned_key_files", set())
    return monkeypatch


def test_key_from_environment(tmp_path: Path, no_key_env: pytest.MonkeyPatch) -> None:
    no_key_env.setenv(KEY_ENV, "  " + KEY.decode() + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert pseudonym_key(tmp_path) == KEY
    assert not (tmp_path / "secrets").exists()


@pytest.mark.parametrize("value", ["", "too-short", "x" * 31])
def test_short_key_in_environment_is_refused(
    tmp_path: Path, no_key_env: pytest.MonkeyPatch, value: str
) -> None:
    no_key_env.setenv(KEY_ENV, value)
    with pytest.raises(PiiKeyError, match=KEY_ENV) as info:
        pseudonym_key(tmp_path)
    message = str(info.value)
    assert KEY_ENV in message and "secrets.token_hex(32)" in message
    assert not value or value not in message
    assert not (tmp_path / "secrets").exists()


def test_local_key_file_is_created_once_private_and_reused(
    tmp_path: Path, no_key_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tongban.common.pii_key")
    with pytest.warns(PiiKeyWarning, match="generated a local pseudonym key") as record:
        key = pseudonym_key(tmp_path / "build")
    path = tmp_path / "build" / "secrets" / "pseudonym.key"
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert len(key) == 64 and re.fullmatch(rb"[0-9a-f]{64}", key)
    assert path.read_text().strip().encode() == key
    assert [p.name for p in path.parent.iterdir()] == ["pseudonym.key"]  # no temp file left

    texts = [str(w.message) for w in record] + [r.getMessage() for r in caplog.records]
    assert texts and all(KEY_ENV in t and key.decode() not in t for t in texts)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once per process and file
        assert pseudonym_key(tmp_path / "build") == key
        assert pseudonym_key(tmp_path / "build") == key
    assert pseudonym("name", "张三", pseudonym_key(tmp_path / "build")) == pseudonym("name", "张三", key)

    # a new process (fresh warning state) reuses the file and says so once
    no_key_env.setattr(pii_key, "_warned_key_files", set())
    with pytest.warns(PiiKeyWarning, match="using the local pseudonym key file") as record:
        assert pseudonym_key(tmp_path / "build") == key
    assert all(key.decode() not in str(w.message) for w in record)


def test_key_file_location_from_environment(tmp_path: Path, no_key_env: pytest.MonkeyPatch) -> None:
    path = tmp_path / "elsewhere" / "k.key"
    no_key_env.setenv(KEY_FILE_ENV, str(path))
    with pytest.warns(PiiKeyWarning):
        key = pseudonym_key(tmp_path / "build")
    assert path.read_text().strip().encode() == key
    assert not (tmp_path / "build").exists()


def test_environment_wins_over_key_file(tmp_path: Path, no_key_env: pytest.MonkeyPatch) -> None:
    with pytest.warns(PiiKeyWarning):
        file_key = pseudonym_key(tmp_path)
    no_key_env.setenv(KEY_ENV, KEY.decode())
    assert pseudonym_key(tmp_path) == KEY != file_key


def test_short_key_file_is_refused(tmp_path: Path, no_key_env: pytest.MonkeyPatch) -> None:
    path = tmp_path / "secrets" / "pseudonym.key"
    path.parent.mkdir()
    path.write_text("abc\n")
    with pytest.raises(PiiKeyError, match="secrets.token_hex"):
        pseudonym_key(tmp_path)

