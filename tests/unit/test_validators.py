"""The Python validators and their DuckDB twins in macros/validators.sql, on the same vectors
(tests/unit/identifier_vectors.csv), on the real reference identifiers and on seeded random
inputs; the check-character functions against python-stdnum where stdnum applies."""

from __future__ import annotations

import csv
import datetime
import random
import string
from pathlib import Path

import duckdb
import pytest
from stdnum.cn import ric as stdnum_ric
from stdnum.cn import uscc as stdnum_uscc
from stdnum.iso7064 import mod_37_36

from tongban.common import validators as V
from tongban.common.reference import division_history, load_reference, nbs_statistical_codes, real_usccs
from tongban.common.config import settings

VECTORS_FILE = Path(__file__).with_name("identifier_vectors.csv")
with VECTORS_FILE.open(encoding="utf-8", newline="") as _fh:
    VECTORS = list(csv.DictReader(_fh))

PY_PROBLEM = {
    "gb11643": lambda v, arg: V.gb11643_problem(v),
    "gb32100": lambda v, arg: V.gb32100_problem(v),
    "gbt2260": lambda v, arg: V.gbt2260_problem(v, arg),
    "gbt36904": lambda v, arg: V.gbt36904_problem(v),
    "gbt4754": lambda v, arg: V.gbt4754_problem(v),
}
SQL_PROBLEM = {
    "gb11643": "gb11643_problem(?)",
    "gb32100": "gb32100_problem(?)",
    "gbt2260": "gbt2260_problem(?, ?)",
    "gbt36904": "gbt36904_problem(?)",
    "gbt4754": "gbt4754_problem(?)",
}


@pytest.fixture(scope="module")
def con():
    connection = duckdb.connect()
    load_reference(connection)
    connection.execute(V.sql_ddl())
    yield connection
    connection.close()


def sql_one(con, expr: str, *params):
    return con.execute(f"select {expr}", list(params)).fetchall()[0][0]


def sql_many(con, expr: str, columns: dict[str, list]) -> list:
    """``expr`` over columns given as Python lists (zipped by unnest), in input order."""
    names = list(columns)
    unnests = ", ".join(f"unnest(${i + 2}) as {name}" for i, name in enumerate(names))
    sql = (f"select {expr} from (select unnest(range(len($1))) as _i, {unnests}) order by _i")
    params = [columns[names[0]], *columns.values()]
    return [row[0] for row in con.execute(sql, params).fetchall()]


# --------------------------------------------------------------------------------------------
# shared vectors


def test_vectors_cover_every_problem_code():
    assert {v["expected"] for v in VECTORS if v["expected"]} == set(V.PROBLEMS)
    assert len(VECTORS) >= 40
    for validator in PY_PROBLEM:
        assert any(v["validator"] == validator and not v["expected"] for v in VECTORS), validator


def _vector_id(v):
    return f"{v['validator']}:{v['value']}:{v['arg']}"


@pytest.mark.parametrize("vector", VECTORS, ids=_vector_id)
def test_vector_python(vector):
    got = PY_PROBLEM[vector["validator"]](vector["value"], vector["arg"] or None)
    assert got == (vector["expected"] or None), vector["note"]


@pytest.mark.parametrize("vector", VECTORS, ids=_vector_id)
def test_vector_sql(con, vector):
    params = [vector["value"]] + ([vector["arg"] or None] if vector["validator"] == "gbt2260" else [])
    got = sql_one(con, SQL_PROBLEM[vector["validator"]], *params)
    assert got == (vector["expected"] or None), vector["note"]


def test_none_is_no_problem(con):
    assert V.gb11643_problem(None) is None
    assert V.gb11643_birth_date(None) is None
    assert V.gb32100_problem(None) is None
    assert V.gbt2260_problem(None, "county") is None
    assert V.gbt36904_problem(None) is None
    assert V.gbt4754_problem(None) is None
    assert con.execute(
        "select gb11643_problem(null), gb11643_birth_date(null), gb32100_problem(null), "
        "gbt2260_problem(null, 'county'), gbt36904_problem(null), gbt4754_problem(null), "
        "gb11643_check_char(null), gb11714_check_char(null), gb32100_check_char(null), "
        "mod37_36_check_char(null), uscc_region_agrees(null, '310101'), uscc_region_agrees('91310101', null)"
    ).fetchall() == [(None,) * 12]


def test_ecert_reference_examples(con):
    path = settings().reference_dir / "identifiers" / "ecert_identifier_examples.csv"
    with path.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 5
    assert sum(r["check_ok"] == "True" for r in rows) == 3
    for r in rows:
        middle = r["cert_type_code"] + r["issuer_code"] + r["serial"] + r["version"]
        assert V.mod37_36_check_char(middle) == r["check_char_mod37_36_calc"]
        expected = None if r["check_ok"] == "True" else "ecert_bad_check_character"
        assert V.gbt36904_problem(r["identifier"]) == expected
        assert sql_one(con, "gbt36904_problem(?)", r["identifier"]) == expected
        assert sql_one(con, "mod37_36_check_char(?)", middle) == r["check_char_mod37_36_calc"]


# --------------------------------------------------------------------------------------------
# real identifiers and python-stdnum


def test_real_usccs_pass(con):
    usccs = [u.uscc for u in real_usccs()]
    assert len(usccs) == 383
    assert [u for u in usccs if V.gb32100_problem(u) is not None] == []
    assert [u for u in usccs if not V.stdnum_uscc_valid(u)] == []
    sql = sql_many(con, "gb32100_problem(u)", {"u": usccs})
    assert sql == [None] * 383


def test_stdnum_uscc_rejects_letter_authorities(con):
    """python-stdnum 2.2 requires 8 leading digits, so it rejects valid A/N/Y codes.

    If this fails, stdnum was fixed: drop the A/N/Y branch of ``stdnum_uscc_valid``.
    """
    code = "N2340603MA2PBMYMXK"
    # computed correctly: the inner GB 11714 and the outer GB 32100 characters
    assert V.gb11714_check_char("MA2PBMYM") == "X"
    assert V.gb32100_check_char(code[:17]) == "K"
    assert stdnum_uscc.calc_check_digit(code[:17]) == "K"  # stdnum's own arithmetic agrees
    assert stdnum_uscc.is_valid(code) is False  # ... but its format check refuses the N
    assert V.stdnum_uscc_valid(code) is True
    assert V.gb32100_problem(code) is None
    assert sql_one(con, "gb32100_problem(?)", code) is None
    for letter_code in ("A1110000MA01H7Q21N", "Y1340100MA8NBX5C2T"):
        assert stdnum_uscc.is_valid(letter_code) is False
        assert V.stdnum_uscc_valid(letter_code) is True
    assert V.stdnum_uscc_valid("N2340603MA2PBMYMXA") is False
    assert V.stdnum_uscc_valid("N234O603MA2PBMYMXK") is False
    assert V.stdnum_uscc_valid("91110000600037341L") is True
    assert V.stdnum_uscc_valid("91110000600037341M") is False


def _rand(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def test_check_chars_agree_with_stdnum():
    rng = random.Random(11643)
    for _ in range(3000):
        first17 = _rand(rng, string.digits, 17)
        ours = V.gb11643_check_char(first17)
        # stdnum's calc_check_digit takes the whole number and ignores its last character
        assert ours == stdnum_ric.calc_check_digit(first17 + "0")
    for _ in range(3000):
        first17 = _rand(rng, "123456789" + "0" * 3, 8) + _rand(rng, V.USCC_ALPHABET, 9)
        assert V.gb32100_check_char(first17) == stdnum_uscc.calc_check_digit(first17)
        assert stdnum_uscc.is_valid(first17 + V.gb32100_check_char(first17))
    for _ in range(3000):
        s = _rand(rng, V.MOD37_36_ALPHABET, rng.randint(0, 60))
        check = V.mod37_36_check_char(s)
        assert check == mod_37_36.calc_check_digit(s)
        assert mod_37_36.is_valid(s + check)
        assert V.mod37_36_check_char(s.lower()) == check


def test_check_chars_known_values():
    assert V.gb11643_check_char("11010519491231002") == "X"
    assert V.gb11714_check_char("60003734") == "1"  # 91110000600037341L
    assert V.gb11714_check_char("MA2PBMYM") == "X"
    assert V.gb11714_check_char("ma2pbmym") == "X"
    assert V.GB32100_WEIGHTS == (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
    assert mod_37_36.calc_check_digit("A12425GABC1234002") == V.mod37_36_check_char("A12425GABC1234002") == "M"


def test_gb11714_check_char_value_range():
    """C9 = 11 - S mod 11 covers 1-9, X (10) and 0 (11)."""
    rng = random.Random(11714)
    seen = {V.gb11714_check_char(_rand(rng, string.digits + string.ascii_uppercase, 8)) for _ in range(2000)}
    assert seen == set("0123456789X")


@pytest.mark.parametrize(
    ("function", "bad"),
    [
        (V.gb11643_check_char, "1101051949123100"),
        (V.gb11643_check_char, "1101051949123100X"),
        (V.gb11714_check_char, "MA2PBMY"),
        (V.gb11714_check_char, "MA2PBMY-"),
        (V.gb32100_check_char, "N2340603MA2PBMYMI"),
        (V.gb32100_check_char, "N2340603MA2PBMYM"),
        (V.mod37_36_check_char, "AB-12"),
    ],
)
def test_check_char_rejects_bad_input(con, function, bad):
    with pytest.raises(ValueError, match=r"^(expected \d+ (digits|characters)|character '-' is not in)"):
        function(bad)
    assert sql_one(con, f"{function.__name__}(?)", bad) is None


# --------------------------------------------------------------------------------------------
# other functions


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("11010519491231002X", datetime.date(1949, 12, 31)),
        ("11010519491231002x", datetime.date(1949, 12, 31)),
        ("110105194912310021", datetime.date(1949, 12, 31)),  # the check character is not looked at
        ("310103201203070024", datetime.date(2012, 3, 7)),  # nor the birthplace
        ("11010519000101001X", datetime.date(1900, 1, 1)),
        ("110105189912310015", None),
        ("110105198002300015", None),
        ("110105209912310010", None),
        ("110105491231002", None),
        ("11010519491231002Y", None),
    ],
)
def test_gb11643_birth_date(con, value, expected):
    assert V.gb11643_birth_date(value) == expected
    assert sql_one(con, "gb11643_birth_date(?)", value) == expected


def test_gb11643_birth_date_today(con):
    today = datetime.date.today()
    first17 = "110105" + today.strftime("%Y%m%d") + "001"
    value = first17 + V.gb11643_check_char(first17)
    assert V.gb11643_birth_date(value) == today
    assert sql_one(con, "gb11643_birth_date(?)", value) == today
    assert V.gb11643_problem(value) is None


@pytest.mark.parametrize(
    ("uscc", "division", "expected"),
    [
        ("91310101MA1FPX0Q1Y", "310101", True),  # same county
        ("91310101MA1FPX0Q1Y", "310104", False),  # another county
        ("91340600MA2P00011E", "340603", True),  # prefecture covers its counties
        ("91340600MA2P00011E", "340700", False),
        ("91340600MA2P00011E", "340600", True),
        ("91310000MA1FL0Q7X0", "310115", True),  # province covers the whole province
        ("91310000MA1FL0Q7X0", "320100", False),
        ("11100000MB03271699", "340603", True),  # central
        ("92340603", "340603", True),  # 8 characters are enough
        ("9234060", "340603", None),  # shorter than 8
        (None, "340603", None),
        ("92340603MA2P00011E", None, None),
    ],
)
def test_uscc_region_agrees(con, uscc, division, expected):
    assert V.uscc_region_agrees(uscc, division) is expected
    assert sql_one(con, "uscc_region_agrees(?, ?)", uscc, division) is expected


def test_make_ecert_identifier(con):
    identifier = V.make_ecert_identifier("11100000000013338W009", "91310000MA1FL0Q7X0", "2025abc")
    assert identifier.startswith(V.ECERT_ROOT + ".11100000000013338W009.91310000MA1FL0Q7X0.2025ABC.001.")
    assert V.gbt36904_problem(identifier) is None
    assert sql_one(con, "gbt36904_problem(?)", identifier) is None
    assert V.make_ecert_identifier("11100000MB03271699022", "340100", "000000016") == (
        "1.2.156.3005.2.11100000MB03271699022.340100.000000016.001.9")
    with pytest.raises(ValueError, match="malformed e-certificate identifier parts"):
        V.make_ecert_identifier("11100000000013338W09", "91310000MA1FL0Q7X0", "1")
    with pytest.raises(ValueError, match="character '-' is not in 0-9/A-Z"):
        V.make_ecert_identifier("11100000000013338W009", "91310000MA1FL0Q7X0", "a-1")


def test_sql_ddl_is_plain_sql():
    ddl = V.sql_ddl()
    assert "{{" not in ddl and "{%" not in ddl and "{#" not in ddl
    macros = {line.split()[4].split("(")[0] for line in ddl.splitlines()
              if line.startswith("create or replace macro")}
    assert macros == {
        "gb11643_check_char", "gb11643_birth_date", "gb11643_problem", "gb11714_check_char",
        "gb32100_check_char", "gb32100_problem", "gbt2260_problem", "uscc_region_agrees",
        "mod37_36_check_char", "gbt36904_problem", "gbt4754_problem",
    }
    assert "->" not in ddl  # DuckDB 2.0: lambdas are written `lambda x: expr`


def test_sql_ddl_renders_as_the_dbt_macro():
    """What dbt renders for ``{{ tongban_validators_ddl() }}`` is what sql_ddl() returns."""
    import jinja2

    from tongban.common.config import PROJECT_ROOT

    template = jinja2.Environment().from_string((PROJECT_ROOT / V.SQL_MACROS_FILE).read_text(encoding="utf-8"))
    assert str(template.module.tongban_validators_ddl()).strip() == V.sql_ddl()


# --------------------------------------------------------------------------------------------
# Python and SQL agree on seeded random inputs


def _division_pool() -> list[str]:
    codes = sorted(division_history()) + sorted(nbs_statistical_codes())
    return codes + ["999999", "100000", "000000", "340199"]


def _random_ids(rng: random.Random, n: int) -> list[str]:
    pool = _division_pool()
    ids = []
    for _ in range(n):
        addr = rng.choice(pool)
        roll = rng.random()
        if roll < 0.85:
            born = datetime.date(1890, 1, 1) + datetime.timedelta(days=rng.randint(0, 365 * 150))
            date = born.strftime("%Y%m%d")
        else:  # maybe impossible dates
            date = f"{rng.randint(1880, 2100)}{rng.randint(0, 13):02d}{rng.randint(0, 32):02d}"
        first17 = addr + date + f"{rng.randint(0, 999):03d}"
        check = V.gb11643_check_char(first17) if rng.random() < 0.7 else rng.choice("0123456789Xx")
        value = first17 + check
        roll = rng.random()
        if roll < 0.05:
            value = addr + date[2:] + first17[14:17]  # 15-digit legacy
        elif roll < 0.10:
            i = rng.randrange(18)
            value = value[:i] + rng.choice("0123456789XxA ") + value[i + 1:]
        elif roll < 0.13:
            value = value[: rng.randrange(19)]
        elif roll < 0.15:
            value = value.lower()
        ids.append(value)
    return ids


def _random_usccs(rng: random.Random, n: int) -> list[str]:
    pool = _division_pool()
    usccs = []
    for _ in range(n):
        authority = rng.choice(V.USCC_AUTHORITIES + "B0")
        region = rng.choice(pool)
        org8 = _rand(rng, V.USCC_ALPHABET, 8)
        inner = V.gb11714_check_char(org8) if rng.random() < 0.8 else rng.choice(V.USCC_ALPHABET)
        first17 = authority + rng.choice(V.USCC_ALPHABET) + region + org8 + inner
        if rng.random() < 0.8 and authority in V.USCC_AUTHORITIES:
            value = first17 + V.gb32100_check_char(first17)
        else:
            value = first17 + rng.choice(V.USCC_ALPHABET)
        roll = rng.random()
        if roll < 0.05:
            i = rng.randrange(18)
            value = value[:i] + rng.choice("IOSVZ-a ") + value[i + 1:]
        elif roll < 0.08:
            value = value[: rng.randrange(20)] + ("" if rng.random() < 0.5 else "1")
        elif roll < 0.12:
            value = value.lower()
        usccs.append(value)
    return usccs


def test_sql_agrees_with_python_on_random_ids(con):
    ids = _random_ids(random.Random(2260), 4000)
    py = [V.gb11643_problem(v) for v in ids]
    assert sql_many(con, "gb11643_problem(v)", {"v": ids}) == py
    assert sql_many(con, "gb11643_birth_date(v)", {"v": ids}) == [V.gb11643_birth_date(v) for v in ids]
    first17 = [v[:17] for v in ids if v[:17].isascii() and v[:17].isdigit() and len(v) >= 17]
    assert sql_many(con, "gb11643_check_char(v)", {"v": first17}) == [V.gb11643_check_char(v) for v in first17]
    # every outcome occurs, so the comparison means something
    assert set(py) == {None, "id_legacy_15_digit", "id_malformed", "id_invalid_birth_date",
                       "id_bad_check_character", "id_birthplace_not_in_use"}


def test_sql_agrees_with_python_on_random_usccs(con):
    usccs = _random_usccs(random.Random(32100), 4000)
    py = [V.gb32100_problem(v) for v in usccs]
    assert sql_many(con, "gb32100_problem(v)", {"v": usccs}) == py
    assert set(py) == {None, "uscc_malformed", "uscc_bad_check_character", "uscc_bad_org_code_check",
                       "uscc_unknown_region"}
    divisions = [random.Random(i).choice(_division_pool()) for i in range(len(usccs))]
    assert sql_many(con, "uscc_region_agrees(u, d)", {"u": usccs, "d": divisions}) == [
        V.uscc_region_agrees(u, d) for u, d in zip(usccs, divisions, strict=True)]
    well_formed = [v.upper() for v, p in zip(usccs, py, strict=True) if p != "uscc_malformed"]
    assert sql_many(con, "gb32100_check_char(substr(v, 1, 17))", {"v": well_formed}) == [
        V.gb32100_check_char(v[:17]) for v in well_formed]
    assert sql_many(con, "gb11714_check_char(substr(v, 9, 8))", {"v": well_formed}) == [
        V.gb11714_check_char(v[8:16]) for v in well_formed]


def test_sql_agrees_with_python_on_random_divisions(con):
    rng = random.Random(4754)
    pool = _division_pool()
    values = [rng.choice(pool) if rng.random() < 0.9 else _rand(rng, "0123456789A", rng.randint(4, 7))
              for _ in range(3000)]
    levels = [rng.choice([None, "province", "prefecture", "county"]) for _ in values]
    py = [V.gbt2260_problem(v, lvl) for v, lvl in zip(values, levels, strict=True)]
    assert sql_many(con, "gbt2260_problem(v, l)", {"v": values, "l": levels}) == py
    assert set(py) == {None, "division_malformed", "division_nbs_statistical_code", "division_not_in_use",
                       "division_wrong_level"}
    industries = [_rand(rng, "0123456789", rng.choice([3, 4, 4, 4])) for _ in range(2000)]
    py = [V.gbt4754_problem(v) for v in industries]
    assert sql_many(con, "gbt4754_problem(v)", {"v": industries}) == py
    assert set(py) == {None, "industry_unknown"}


def test_sql_agrees_with_python_on_random_ecerts(con):
    rng = random.Random(36904)
    usccs = [u.uscc for u in real_usccs()]
    values = []
    for _ in range(2000):
        identifier = V.make_ecert_identifier(
            rng.choice(usccs) + f"{rng.randint(0, 999):03d}",
            rng.choice(usccs) if rng.random() < 0.8 else rng.choice(_division_pool()),
            _rand(rng, V.MOD37_36_ALPHABET, rng.randint(1, 40)),
            f"{rng.randint(1, 9):03d}",
        )
        roll = rng.random()
        if roll < 0.3:
            identifier = identifier[:-1] + rng.choice(V.MOD37_36_ALPHABET)
        elif roll < 0.4:
            i = rng.randrange(len(identifier))
            identifier = identifier[:i] + rng.choice(".-Ia") + identifier[i + 1:]
        elif roll < 0.5:
            identifier = identifier.lower()
        values.append(identifier)
    py = [V.gbt36904_problem(v) for v in values]
    assert sql_many(con, "gbt36904_problem(v)", {"v": values}) == py
    assert set(py) == {None, "ecert_malformed", "ecert_bad_check_character"}
    middles = [_rand(rng, V.MOD37_36_ALPHABET + "abc", rng.randint(0, 50)) for _ in range(2000)]
    assert sql_many(con, "mod37_36_check_char(v)", {"v": middles}) == [
        V.mod37_36_check_char(v) for v in middles]
