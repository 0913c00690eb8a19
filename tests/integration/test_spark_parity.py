"""Spark gives DuckDB's answers (issue 19): every rule kind with a Spark twin runs on a real local
Spark (pyspark, the ``spark`` extra) and on DuckDB over the same values, and the answers must be
equal row by row; a difference fails showing the first differing rows.

Covered so far — exactly the kinds that have ``sql_spark`` / ``checks_spark``:

* validators: gb11643, gb32100, gbt2260 (with and without division_level), gbt36904, gbt4754;
* row rules: min_age_at, uscc_region_agrees;
* field rules: required, validator, range, not_future, not_before (on every field of the standard
  that has them);
* mapping steps: lower, upper, split, to_list, first, parse_date (strptime formats and epoch_ms),
  email, phone, constant, remove_regex.

The values: the shared vectors (tests/unit/identifier_vectors.csv), the real reference
identifiers and seeded random inputs (valid ones, one character changed, impossible dates,
15-digit IDs, 29 February birthdays).
"""

from __future__ import annotations

import csv
import datetime
import random
import string
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pytest

from tests.spark_session import local_spark, with_reference
from tongban.common import validators as V
from tongban.common.reference import load_reference, real_usccs
from tongban.standards.load import load_standards
from tongban.standards.rules import FIELD_RULES, STEPS, VALIDATORS, FieldSql, sql

pyspark = pytest.importorskip("pyspark", reason="the spark extra is not installed (uv sync --extra spark)")

pytestmark = pytest.mark.spark

VECTORS = list(csv.DictReader(Path(__file__).parents[1].joinpath("unit", "identifier_vectors.csv")
                              .open(encoding="utf-8", newline="")))
ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def duck():
    con = duckdb.connect()
    load_reference(con)
    con.execute(V.sql_ddl())
    yield con
    con.close()


@pytest.fixture(scope="module")
def spark(tmp_path_factory, duck):
    session = with_reference(local_spark(tmp_path_factory.mktemp("spark-warehouse"), "tongban-parity"), duck)
    yield session
    session.stop()


def _py(value):
    """A Spark value as DuckDB's Python client gives it (a struct is a dict, an array a list)."""
    if hasattr(value, "asDict"):
        return {k: _py(v) for k, v in value.asDict().items()}
    return [_py(v) for v in value] if isinstance(value, list) else value


def _both(duck, spark, columns: dict[str, list], duck_expr: str, spark_expr: str,
          types: dict[str, str] | None = None, extra: tuple[str, str] = ("", ""),
          from_: tuple[str, str] = ("t", "t")) -> None:
    """``duck_expr`` on DuckDB and ``spark_expr`` on Spark over the same rows (string columns but
    those ``types`` names; ``extra``: more columns computed on each engine), equal row by row."""
    types = types or {}
    names = list(columns)
    rows = list(zip(*columns.values(), strict=True))
    typed = ", ".join('"' + n + '" ' + types.get(n, "varchar") for n in names)
    duck.execute(f"create or replace temp table t_raw (i integer, {typed})")
    duck.executemany(f"insert into t_raw values (?, {', '.join('?' for _ in names)})",
                     [(i, *r) for i, r in enumerate(rows)])
    duck.execute(f"create or replace temp view t as select *{extra[0]} from t_raw")
    got_duck = [r[0] for r in duck.execute(f"select {duck_expr} from {from_[0]} order by i").fetchall()]
    frame = spark.createDataFrame([(i, *(None if v is None else str(v) for v in r)) for i, r in enumerate(rows)],
                                  "i int, " + ", ".join(f"c{j} string" for j in range(len(names))))
    casts = ", ".join(f"cast(c{j} as {types.get(n, 'string').replace('varchar', 'string')}) as `{n}`"
                      for j, n in enumerate(names))
    frame.createOrReplaceTempView("t_raw")
    spark.sql(f"select i, {casts} from t_raw").createOrReplaceTempView("t_typed")
    spark.sql(f"select *{extra[1]} from t_typed").createOrReplaceTempView("t")
    got_spark = [_py(r[0]) for r in spark.sql(f"select {spark_expr} from {from_[1]} order by i").collect()]
    diff = [(row, d, s) for row, d, s in zip(rows, got_duck, got_spark, strict=True) if d != s]
    assert not diff, f"{len(diff)} of {len(rows)} rows differ (row, duckdb, spark): {diff[:5]}"
    assert len(got_spark) == len(rows)


def _mutate(rng: random.Random, s: str, alphabet: str) -> str:
    i = rng.randrange(len(s))
    return s[:i] + rng.choice(alphabet) + s[i + 1:]


def _ids(rng: random.Random, n: int) -> list[str]:
    prefixes = ["110105", "310103", "320102", "330106", "340104", "999999", "110000", "310115"]
    out = []
    for _ in range(n):
        born = datetime.date(1890, 1, 1) + datetime.timedelta(days=rng.randrange(50000))
        body = rng.choice(prefixes) + born.strftime("%Y%m%d") + f"{rng.randrange(1000):03d}"
        if rng.random() < 0.1:
            body = body[:6] + rng.choice(["19490230", "20000229", "20010229", "19000101"]) + body[14:]
        check = V.gb11643_check_char(body)
        value = body + check
        r = rng.random()
        if r < 0.2:
            value = _mutate(rng, value, string.digits + "Xx")
        elif r < 0.25:
            value = value[:6] + value[8:17]  # 15 digits
        elif r < 0.3:
            value = value.lower()
        out.append(value)
    return out


def _usccs(rng: random.Random, n: int) -> list[str]:
    real = [r.uscc for r in real_usccs()]
    out = []
    for _ in range(n):
        value = rng.choice(real)
        if rng.random() < 0.5:
            value = _mutate(rng, value, V.USCC_ALPHABET + "IOSVZ")
        out.append(value)
    return out


def _ecerts(rng: random.Random, n: int) -> list[str]:
    real = [r.uscc for r in real_usccs()]
    out = []
    for _ in range(n):
        issuer = rng.choice([rng.choice(real), "310101"])
        serial = "".join(rng.choice(string.digits + string.ascii_uppercase) for _ in range(rng.randint(1, 12)))
        value = V.make_ecert_identifier(rng.choice(real) + "001", issuer, serial)
        if rng.random() < 0.4:
            value = value[:-1] + rng.choice(string.digits + string.ascii_uppercase)
        out.append(value)
    return out


def _values(validator: str, rng: random.Random) -> list[str]:
    vectors = [v["value"] for v in VECTORS if v["validator"] == validator]
    extra = {
        "gb11643": lambda: _ids(rng, 400),
        "gb32100": lambda: _usccs(rng, 300),
        "gbt2260": lambda: [f"{rng.randrange(100000, 999999)}" for _ in range(200)]
        + ["110000", "110100", "110105", "310115", "a10105", "11010", None],
        "gbt36904": lambda: _ecerts(rng, 200),
        "gbt4754": lambda: [f"{rng.randrange(10000):04d}" for _ in range(200)] + ["abcd", None],
    }[validator]()
    # a final newline: Java's $ would match before it, RE2's does not
    return vectors + extra + [v + "\n" for v in vectors[:3]]


@pytest.mark.parametrize("validator", VALIDATORS.names())
def test_validator_twin_gives_duckdbs_answers(duck, spark, validator):
    kind = VALIDATORS[validator]
    values = _values(validator, random.Random(validator))
    levels = [None, "province", "prefecture", "county"] if validator == "gbt2260" else [None]
    for level in levels:
        f = SimpleNamespace(division_level=level)
        _both(duck, spark, {"v": values}, kind.sql_duckdb("v", f), kind.sql_spark("v", f))


def test_twins_tell_problems_apart(duck, spark):
    """The parity is not vacuous: the values reach every problem code the vectors name."""
    seen = set()
    for validator in VALIDATORS.names():
        values = _values(validator, random.Random(validator))
        f = SimpleNamespace(division_level="county")
        sql = VALIDATORS[validator].sql_spark("v", f)
        spark.createDataFrame([(v,) for v in values], "v string").createOrReplaceTempView("t")
        seen |= {r[0] for r in spark.sql(f"select distinct {sql} from t").collect()}
    assert {v["expected"] for v in VECTORS if v["expected"]} <= seen


@pytest.fixture(scope="module")
def std():
    return load_standards(ROOT / "standards")


def _rule(std, kind: str):
    for ent in std.entities.values():
        for r in ent.rules:
            if r.rule == kind:
                return ent, r
    raise LookupError(kind)


def test_min_age_at_twin(duck, spark, std):
    ent, rule = _rule(std, "min_age_at")
    rng = random.Random("min_age_at")
    ids = _ids(rng, 300) + ["11010520000229002X", "110105200002290029"]
    days = []
    for value in ids:
        born = V.gb11643_birth_date(value)
        base = born or datetime.date(1990, 1, 1)
        day = base.replace(year=min(base.year + rule.years, 2100), day=min(base.day, 28))
        days.append(rng.choice([
            (day + datetime.timedelta(days=rng.choice([-1, 0, 1]))).isoformat(),
            (base + datetime.timedelta(days=rng.randrange(30000))).isoformat(), "1800-01-01", None]))
    days[-2:] = ["2014-02-28", "2014-03-01"]
    cols = {rule.id_field: ids, rule.date_field: days}
    _both(duck, spark, cols, f"coalesce({rule.checks_duckdb(ent)[0].condition}, false)",
          f"coalesce({rule.checks_spark(ent)[0].condition}, false)", types={rule.date_field: "date"})


def test_uscc_region_agrees_twin(duck, spark, std):
    ent, rule = _rule(std, "uscc_region_agrees")
    rng = random.Random("uscc_region_agrees")
    usccs = _usccs(rng, 300) + [None, "9131", "91100000MA1234567X"]
    divisions = [rng.choice([u[2:8] if u and len(u) >= 8 else None, "310101", "310100", "320102", "110105"])
                 for u in usccs]
    for i, u in enumerate(usccs):  # also the prefecture and province forms of the USCC's region
        if u and len(u) >= 8 and rng.random() < 0.3:
            usccs[i] = u[:6] + "00" + u[8:] if rng.random() < 0.5 else u[:4] + "0000" + u[8:]
    _both(duck, spark, {rule.uscc_field: usccs, rule.division_field: divisions},
          rule.checks_duckdb(ent)[0].condition, rule.checks_spark(ent)[0].condition)


def _field(shape: str = "s") -> FieldSql:
    """A mapping field's compile state for one step on its own (a quarantining field)."""
    return FieldSql(std=None, mapping=None, fdef=SimpleNamespace(on_invalid="quarantine"),
                    fm=SimpleNamespace(source=None), null_values=[], pretrimmed=False,
                    hw=lambda e: e, initial="v", shape=shape)


def _step_both(duck, spark, step: str, arg, values: list | dict, shape: str = "s", what: str = "sql",
               field=None, from_: tuple[str, str] = ("t", "t")) -> None:
    """One step's DuckDB SQL and its Spark twin over ``values`` (a column ``v``, or the columns of
    a dict), its value and every check; ``field(dialect)`` makes the compile state."""
    kind = STEPS[step]
    cd, cs = (field("duckdb"), field("spark")) if field else (_field(shape), _field(shape))
    duck_sql = sql(kind, "duckdb", what)(cd, '"v"', arg)
    spark_sql = sql(kind, "spark", what)(cs, "`v`", arg)
    assert cd.shape == cs.shape and len(cd.checks) == len(cs.checks)
    columns = values if isinstance(values, dict) else {"v": values}
    _both(duck, spark, columns, duck_sql, spark_sql, from_=from_)
    for (dc, dr, db), (sc, sr, sb) in zip(cd.checks, cs.checks, strict=True):
        assert (dr, db) == (sr, sb)
        _both(duck, spark, columns, f"coalesce({dc}, false)", f"coalesce({sc}, false)", from_=from_)


TEXTS = ["a,b", " a , ,b ", "a、b,c", "、", "", None, "x;y", "Ａ，Ｂ", "单一", "a\tb", "a'b", "a.b|c"]


@pytest.mark.parametrize("step", ["lower", "upper"])
def test_case_steps(duck, spark, step):
    _step_both(duck, spark, step, None, ["AbC", "ÄÖ", "中文Ab", "", None, "ǅ"])


@pytest.mark.parametrize("separators", [[","], [";"], ["、", ","], ["、"], ["."], ["|", "\\"]])
def test_split_step(duck, spark, separators):
    _step_both(duck, spark, "split", separators, TEXTS)


def test_to_list_and_first(duck, spark):
    _step_both(duck, spark, "to_list", None, TEXTS)
    kind_first = STEPS["first"]
    split_duck = sql(STEPS["split"], "duckdb")(_field(), '"v"', [","])
    split_spark = sql(STEPS["split"], "spark")(_field(), "`v`", [","])
    _both(duck, spark, {"v": TEXTS}, kind_first.sql_duckdb(_field("l"), f"({split_duck})", None),
          kind_first.sql_spark(_field("l"), f"({split_spark})", None))


DATES = ["20200101", "2020-01-01", "2020-1-5", "2020-13-01", "2021-02-29", "2020-02-29", "19491231",
         "1949-12-31", "2020年1月5日", "2020年01月05日", "2020年13月1日", "20201", "2020-01-01 ", "x", "",
         "2020/01/01", "0001-01-01", "99991231", "2020-01-01T00:00", " 2020-01-01", "\t20200101", "2020-1-05",
         "2020-01-5", "2020-001-01", "202011", "2020115", None]
EPOCHS = ["1577836800000", "1577807999999", "1577808000000", "0", "1234567890", "12345678901234",
          "-1000", "9999999999999", "abc", "1700000000000", None]


@pytest.mark.parametrize("formats", [["%Y%m%d"], ["%Y-%m-%d"], ["%Y年%-m月%-d日"], ["epoch_ms"],
                                     ["%Y-%m-%d", "%Y%m%d", "epoch_ms"]])
def test_parse_date_step(duck, spark, formats):
    _step_both(duck, spark, "parse_date", formats, DATES + EPOCHS, what="terminal")


def _field_values(std, f) -> list:
    if f.validator:
        return _values(f.validator, random.Random(f.name))[:150]
    if f.type == "date":
        today = datetime.date.today()
        return ["1799-12-31", "1800-01-01", "1900-01-01", "2000-02-29", today.isoformat(),
                (today + datetime.timedelta(days=1)).isoformat(), "2999-01-01", None]
    if f.type in ("bigint", "double") or f.type.startswith("decimal"):
        return ["-1", "0", "0.5", "1000000", "999999999999", "100000000000000", None]
    return ["x", "", None]


@pytest.mark.parametrize("rule", ["required", "validator", "range", "not_future", "not_before"])
def test_field_rule_twins(duck, spark, std, rule):
    kind = FIELD_RULES[rule]
    fields = [(ent, f) for ent in std.entities.values() for f in ent.fields
              if f.derived is None and not f.type.endswith("[]") and kind.row_duckdb(ent, f) is not None]
    assert fields, f"no field of the standard uses {rule}"
    for ent, f in fields:
        values = _field_values(std, f)
        d, s = kind.row_duckdb(ent, f), kind.row_spark(ent, f)
        assert len(d.columns) == len(s.columns) and len(d.checks) == len(s.checks)
        extra_duck = (", case when i % 3 = 0 then [{'reason': 'x', 'field': " + repr(f.name)
                      + ", 'value': 'v'}] else []::struct(reason varchar, field varchar, value varchar)[] "
                      "end as blocking_issues")
        extra_spark = (", case when i % 3 = 0 then array(named_struct('reason', 'x', 'field', " + repr(f.name)
                       + ", 'value', 'v')) else cast(array() as array<struct<reason:string, field:string, "
                       "value:string>>) end as blocking_issues")
        extra = ("".join(", " + c for c in d.columns) + extra_duck, "".join(", " + c for c in s.columns) + extra_spark)
        for dc, sc in zip(d.checks, s.checks, strict=True):
            assert (dc.field, dc.reason_is_sql) == (sc.field, sc.reason_is_sql)
            assert dc.reason_is_sql or dc.reason == sc.reason
            _both(duck, spark, {f.name: values}, f"coalesce({dc.condition}, false)", f"coalesce({sc.condition}, false)",
                  types={f.name: f.type}, extra=extra)
            if dc.reason_is_sql:
                _both(duck, spark, {f.name: values}, dc.reason, sc.reason, types={f.name: f.type}, extra=extra)


CONTACTS = ["Foo.Bar@Example.COM", "a@b", "x@y.cn", "no-at", "@", "a@@b.cn", "13812345678", "138 1234 5678",
            "(021)-6123-4567", "021-61234567", "0571-87654321 转 12", "138****5678", "+86 13812345678",
            "电话：0512—66886688", "12345", "", None, "tel 010-12345678, 13912345678", "a@b.cn 13812345678"]


@pytest.mark.parametrize("step", ["email", "phone"])
def test_contact_steps(duck, spark, step):
    _step_both(duck, spark, step, None, CONTACTS, what="terminal")


def test_constant_step(duck, spark):
    _step_both(duck, spark, "constant", "it's \\ 常量", ["x", None])


@pytest.mark.parametrize("pattern", ["^[A-T]", r"\(更新说明:[^)]*\)$", "[0-9]+", "", "a|b", r"\s+"])
def test_remove_regex_step(duck, spark, pattern):
    values = ["A123", "T", "U9", "每月(更新说明:按月)", "每月(更新说明:按月)\n", "(更新说明:x)", "a1b22c333",
              "aabb", "  a b  ", "", None, "ba"]
    _step_both(duck, spark, "remove_regex", pattern, values)


def test_spark_literal_reads_back(spark):
    """Every value a mapping can put into Spark SQL reads back as itself (quotes, backslashes,
    control characters, adjacent-literal concatenation)."""
    from tongban.standards.rules.spark import spark_ident, spark_literal

    values = ["it's", "a''b", "\\", "\\'", "'", "\n\t\r", "x\\z", "${var}", "{{ jinja }}", "中文", "--", "';"]
    values += ["\0", "a{b}", "$" + "{x}", "\\" + "$" + "{x}", "$" + "{hivevar:x}"]
    spark.conf.set("spark.sql.variable.substitute", "true")  # the literal must hold without session_conf
    try:
        got = spark.sql("select " + ", ".join(spark_literal(v) for v in values)).collect()[0]
    finally:
        spark.conf.set("spark.sql.variable.substitute", "false")
    assert list(got) == values
    assert spark.sql(f"select 1 as {spark_ident('a`b 列')}").columns == ["a`b 列"]


# ---- the committee's cross-field rules (tongban.standards.rules.cross_field) -----------------------

CROSS_RULES = """
- {rule: compare, expr: updated_date >= published_date, severity: warn, reason: r_cmp, message: {zh: z, en: e}}
- {rule: compare, expr: updated_date != published_date, severity: warn, reason: r_ne_f, message: {zh: z, en: e}}
- {rule: compare, expr: "published_date >= '2000-01-01'", severity: quarantine, reason: r_lit, message: {zh: z, en: e}}
- {rule: compare, expr: "domain_code != 'unknown'", severity: warn, reason: r_ne, message: {zh: z, en: e}}
- {rule: compare, expr: "summary < 'it'", severity: warn, reason: r_q, message: {zh: z, en: e}}
- {rule: compare, expr: "summary = '\\\\ $\\u007bx}'", severity: warn, reason: r_bs, message: {zh: z, en: e}}
- {rule: compare, expr: record_count > 1.5, severity: warn, reason: r_half, message: {zh: z, en: e}}
- {rule: compare, expr: record_count <= -2.5, severity: warn, reason: r_neg, message: {zh: z, en: e}}
- {rule: compare, expr: record_count = 3, severity: warn, reason: r_eq, message: {zh: z, en: e}}
- {rule: required_if, field: summary, when: "domain_code = 'transport'", severity: quarantine, reason: r_req,
   message: {zh: z, en: e}}
- {rule: required_if, field: contact_email, when: record_count >= 10, severity: warn, reason: r_req2,
   message: {zh: z, en: e}}
- {rule: at_least_one_of, fields: [contact_email, contact_phone], severity: warn, reason: r_one, message: {zh: z, en: e}}
- {rule: at_least_one_of, fields: [contact_email, contact_phone, summary], severity: warn, reason: r_three,
   message: {zh: z, en: e}}
- {rule: not_in_future, field: updated_date, severity: quarantine, reason: r_fut, message: {zh: z, en: e}}
- {rule: not_before, field: published_date, bound: 2000-01-01, severity: warn, reason: r_bef, message: {zh: z, en: e}}
"""


def _with_rules(std, entity: str, rules_yaml: str):
    import yaml

    from tongban.standards.models import Entity

    raw = std.entities[entity].model_dump(mode="json")
    raw["rules"] = yaml.safe_load(rules_yaml)
    return Entity.model_validate(raw)


def test_cross_field_rule_twins(duck, spark, std):
    """Every kind of the committee's vocabulary, with field and literal sides, quotes and backslashes
    in literals, a bigint compared with a fraction (DuckDB rounds the literal half away from zero),
    nulls on either side and today's date."""
    ent = _with_rules(std, "data_resource", CROSS_RULES)
    rng = random.Random("cross_field")
    today = datetime.date.today()
    dates = ["1999-12-31", "2000-01-01", "2020-01-02", "2020-01-03", today.isoformat(),
             (today + datetime.timedelta(days=1)).isoformat(), None]
    texts = ["transport", "unknown", "it's", "it", "\\ ${x}", "", "a@b.cn", None]
    n = 400
    cols = {"published_date": [rng.choice(dates) for _ in range(n)],
            "updated_date": [rng.choice(dates) for _ in range(n)],
            "domain_code": [rng.choice(texts) for _ in range(n)],
            "summary": [rng.choice(texts) for _ in range(n)],
            "contact_email": [rng.choice(texts) for _ in range(n)],
            "contact_phone": [rng.choice(["010-12345678", None]) for _ in range(n)],
            "record_count": [rng.choice(["-3", "-2", "1", "2", "3", "10", None]) for _ in range(n)]}
    types = {"published_date": "date", "updated_date": "date", "record_count": "bigint"}
    seen = set()
    for r in ent.rules:
        (d,), (s,) = r.checks_duckdb(ent), r.checks_spark(ent)
        assert (d.reason, d.field, d.severity, d.masked) == (s.reason, s.field, s.severity, s.masked)
        _both(duck, spark, cols, f"coalesce({d.condition}, false)", f"coalesce({s.condition}, false)", types=types)
        flagged = duck.execute(f"select count(*) from t where {d.condition}").fetchone()[0]
        seen.add(r.reason) if 0 < flagged < n else None
    assert seen == {r.reason for r in ent.rules}, "every rule flags some rows and passes others"


def test_cross_field_decimal_literal(duck, spark, std):
    ent = _with_rules(std, "business_license", """
- {rule: compare, expr: registered_capital_yuan >= 1.005, severity: warn, reason: r_dec, message: {zh: z, en: e}}
- {rule: compare, expr: registered_capital_yuan < -0.125, severity: warn, reason: r_neg, message: {zh: z, en: e}}
""")
    values = ["1.00", "1.01", "1.02", "-0.12", "-0.13", "0", None]
    for r in ent.rules:
        (d,), (s,) = r.checks_duckdb(ent), r.checks_spark(ent)
        _both(duck, spark, {"registered_capital_yuan": values}, f"coalesce({d.condition}, false)",
              f"coalesce({s.condition}, false)", types={"registered_capital_yuan": "decimal(20,2)"})


def test_every_rule_kind_compiles_for_both_dialects(std):
    """A rule kind is not done until both compile: every field rule that gives DuckDB SQL for a
    field of the standard gives Spark SQL too, and every row rule kind has checks on both."""
    from tongban.standards.rules import ROW_RULES

    for ent in std.entities.values():
        for f in ent.fields:
            for rule in FIELD_RULES:
                d, s = rule.row_duckdb(ent, f), rule.row_spark(ent, f)
                assert (d is None) == (s is None), (rule.name, ent.entity, f.name)
                if d is not None:
                    assert (len(d.columns), len(d.helpers), len(d.checks)) == \
                           (len(s.columns), len(s.helpers), len(s.checks)), (rule.name, f.name)
    standard_kinds = {r.rule for ent in std.entities.values() for r in ent.rules}
    test_kinds = {r.rule for r in _with_rules(std, "data_resource", CROSS_RULES).rules}
    assert standard_kinds | test_kinds == set(ROW_RULES.names())


def test_content_hash_tells_rows_apart(spark):
    """The Spark content hash is equal for equal rows and differs where DuckDB's hash() differs:
    a null moved to another column, a null inside a list, an empty string against a null (and, as
    DuckDB's, hashes an empty list as a null one)."""
    from tongban.standards.rules.spark_rows import content_hash

    fields = [SimpleNamespace(name="a", type="varchar"), SimpleNamespace(name="b", type="varchar"),
              SimpleNamespace(name="c", type="varchar[]")]
    rows = [("x", None, ["a"]), (None, "x", ["a"]), ("x", None, ["a"]), ("x", "", ["a"]),
            ("x", None, ["a", None]), ("x", None, [None, "a"]), ("x", None, []), ("x", None, None)]
    spark.createDataFrame([(i, *r) for i, r in enumerate(rows)], "i int, a string, b string, c array<string>") \
        .createOrReplaceTempView("h")
    got = [r[0] for r in spark.sql(f"select {content_hash(fields)} from h order by i").collect()]
    con = duckdb.connect()
    con.execute("create table h (i int, a varchar, b varchar, c varchar[])")
    con.executemany("insert into h values (?, ?, ?, ?)", [(i, *r) for i, r in enumerate(rows)])
    want = [r[0] for r in con.execute("select hash(a, b, c) from h order by i").fetchall()]
    assert [[x == y for y in got] for x in got] == [[x == y for y in want] for x in want]
    assert len(set(got)) == len(rows) - 2

# --------------------------------------------------------------------------------------------
# the staging models' own constructs (brief "stage"): issue structs, masking, the remaining steps

def _spark_values(spark, values: list, expr: str) -> list:
    """``expr`` over a one-column Spark table ``t(v string)``, in the values' order."""
    spark.createDataFrame(list(enumerate(values)), "i int, v string").createOrReplaceTempView("t")
    return [_py(r[0]) for r in spark.sql(f"select {expr} from t order by i").collect()]


def test_spark_mask_is_pythons_mask(spark):
    """The Spark masking expression gives tongban.common.pii.mask's display form: the unit tests'
    examples, blank values and seeded random names, IDs and phones (full-width, padded with
    Unicode spaces, compound surnames, short values)."""
    from tests.unit.test_pii import MASK_EXAMPLES, _random_values
    from tongban.common.pii import mask
    from tongban.standards.rules.spark_mask import spark_mask

    by_kind: dict[str, list] = {}
    for kind, value, _ in MASK_EXAMPLES:
        by_kind.setdefault(kind, []).append(value)
    for kind, value in _random_values(1) + _random_values(2):
        by_kind.setdefault(kind, []).append(value)
    blanks = [None, "", "   ", "\u3000\t\n", "\u2028x\x1c", "\u3000欧阳娜娜 ", "ｘ", "{$x}", "a\\b"]
    for kind in ("name", "id_number", "phone", "licence_number"):
        values = by_kind.get(kind, []) + blanks
        got = _spark_values(spark, values, spark_mask(kind, "v"))
        diff = [(v, mask(kind, v), g) for v, g in zip(values, got, strict=True) if mask(kind, v) != g]
        assert not diff, f"{kind}: {len(diff)} of {len(values)} differ (value, python, spark): {diff[:5]}"
    assert len(by_kind["name"]) > 150 and len(by_kind["phone"]) > 150


def test_issue_structs(duck, spark):
    """dbt_rows' _issue/_issue_list on Spark: the same structs in the same order (masked values,
    SQL reasons, lists quoted as DuckDB writes a list, the empty list typed)."""
    from tongban.common.pii import sql_ddl
    from tongban.standards.rules.spark_parts import duck_list_text
    from tongban.standards.targets.dbt_rows import _issue, _issue_list

    duck.execute(sql_ddl())
    values = ["13812345678", "欧阳娜娜", "x", "", None, "a,b", " 2 ", "ｘ" * 300]

    def items(dialect: str, q: str) -> list[tuple[str, str]]:
        v = f"{q}v{q}"
        return [(f"{v} is not null", _issue("phone", "invalid_phone", v, "phone", dialect=dialect)),
                (f"{v} like '%a%'", _issue("name", "bad_name", v, "name", dialect=dialect)),
                (f"{v} = 'x'", _issue("f", "case when true then 'sql' end", v, reason_is_sql=True, dialect=dialect)),
                (f"length({v}) > 0", _issue("long", "too_long", v, dialect=dialect))]
    _both(duck, spark, {"v": values}, _issue_list(items("duckdb", '"'), "duckdb"),
          _issue_list(items("spark", "`"), "spark"))
    _both(duck, spark, {"v": values}, _issue_list([], "duckdb"), _issue_list([], "spark"))
    # list values, as a reason quotes them (the staging model's list fields)
    pieces = [None, "a", "", "null", "NuLL", " a", "a ", "\ta", "a\nb", "a b", "中文", "\u3000a", "a'b", "a\\b",
              'a"b', "a,b", "a(b", "a)b", "a:b", "a=b", "a[b", "a]b", "a{b", "a}b", "a;b", "nullx", "-"]
    lists = [None, "[]"] + [f"[{i}]" for i in range(len(pieces))] + ["[1, 2, 0]", "[3, 4, 5, 6]"]
    arr_duck = ("(case when v is null then null else list_transform(json_extract(v, '$[*]')::int[], "
                "lambda i: ($pieces)[i + 1]) end)")
    arr_spark = ("(case when v is null then null else transform(from_json(v, 'array<int>'), "
                 "i -> element_at(array($pieces), i + 1)) end)")
    duck_pieces = ", ".join("null::varchar" if p is None else "'" + p.replace("'", "''") + "'" for p in pieces)
    from tongban.standards.rules.spark import spark_literal
    spark_pieces = ", ".join("cast(null as string)" if p is None else spark_literal(p) for p in pieces)
    _both(duck, spark, {"v": lists}, f"({arr_duck.replace('$pieces', '[' + duck_pieces + ']')})::varchar",
          duck_list_text(arr_spark.replace("$pieces", spark_pieces)))


JSON_TRICKY = ['{}', '{"a":1}', '{"a":1,}', '[1,]', '[1,,2]', '[,]', '{,}', '{"a":NaN}', '{"a":-Infinity}', '{"a":inf}',
               '{"a":nAn}', '{"a":+nan}', '{"a":infinit}', '{"a":infinityx}', '{/*c*/}', '{"a":1}//c', "{'a':1}",
               '{"a":01}', '{"a":1.}', '{"a":.5}', '{"a":+1}', '{"a":"\t"}', '{"a":"\\x"}', '{"a":"\\u12"}',
               '{"a":"\\ud800"}', '{"a":"\\ud800\\udc00"}', '{"a":"\\udc00"}', '{"a":"\\ud800\\u0041"}',
               '{"a":"\\uDBFF\\uDFFF"}', '{"a":"\\U0041"}', '{"a":"\\b\\f\\n\\r\\t\\\\\\"\\/"}', ' {} ', '{} ', '{}\n',
               '{}\u3000', '\x0c{}', '{"a":1}{"b":2}', '{"a":1} x', '{a:1}', '{"a":1 "b":2}', '{"a"}', '{"a":}',
               '{"a":1e5}', '{"a":1E+5}', '{"a":1e}', '{"a":-}', '{"a":-0}', '{"a":[1,{"b":[]}]}', '{"a":True}',
               '{"a":true,"b":false,"c":null}', '{"a":1\x0b}', '{"a":"\x7f"}', '{"a":1}\x00', '{"":1}', '{"a":[1,]}',
               '{"a":[ ,]}', '{"a":0x10}', '{"a":"\u2028"}', '{"a":-01}', '{"a":1.5e-3}', '[' * 60 + ']' * 60,
               '{"a":' * 40 + '1' + '}' * 40, '{"a":' * 40 + '1' + '}' * 39, '{"a":99999999999999999999}',
               '{"a":"😀"}', '{"中":"文"}', '"x"', '1', 'null', '', None, '{"a":"b"}}', '{{}}', '{"a":{}}',
               '{"a":"{\\"b\\":1}"}', '{"a":"x\\"}', '{"a\\"":1}', '{"a":"\u3000"}', '{"a":1,"b":2,}', '{"a":1,,}',
               '{"a"\t:\t1\t}', '{\r\n"a": [1, 2, ]\r\n}', '{"a":[}', '{"a":]}', '{"":""}', '{"a":""""}']


def _json_docs(rng: random.Random, n: int) -> list[str]:
    import json

    def value(depth: int):
        r = rng.random()
        if depth > 3 or r < 0.3:
            return rng.choice([1, -2.5, 0, "x", "a\"b", "中", None, True, False, "\\", "", 1e10, "{", "[1]"])
        if r < 0.65:
            return [value(depth + 1) for _ in range(rng.randint(0, 3))]
        return {rng.choice(["a", "b", "", "中", "k\"", "{"]): value(depth + 1) for _ in range(rng.randint(0, 3))}

    out = []
    for _ in range(n):
        doc = json.dumps({"k": value(0)} if rng.random() < 0.7 else value(0), ensure_ascii=rng.random() < 0.5,
                         indent=rng.choice([None, 1]))
        for _ in range(rng.choice([0, 0, 1, 2])):
            i = rng.randrange(len(doc) + 1)
            doc = doc[:i] + rng.choice(list('{}[],:" \\nt0-.eE') + ["", "\t", ",]", "NaN"]) + doc[i + 1:]
        out.append(doc)
    return out


def test_json_valid_twin(duck, spark):
    """Spark has no json_valid: the twin agrees with DuckDB's on tricky JSON and on seeded random
    documents with random damage, and through json_object (the nested-object check)."""
    from tongban.standards.rules.spark_parts import json_object, json_valid
    from tongban.standards.rules.sqlparts import json_object_sql

    values = JSON_TRICKY + _json_docs(random.Random("json"), 600)
    _both(duck, spark, {"v": values}, 'coalesce(json_valid("v"), false)', f"coalesce({json_valid('`v`')}, false)")
    _both(duck, spark, {"v": values}, f'coalesce({json_object_sql(chr(34) + "v" + chr(34))}, false)',
          f"coalesce({json_object('`v`')}, false)")
    spark.createDataFrame([(v,) for v in values], "v string").createOrReplaceTempView("t")
    seen = {r[0] for r in spark.sql(f"select {json_valid('v')} from t").collect()}
    assert seen >= {True, False}


SPACES = ["", " ", "\t", "\n", "\r", "\u3000", "\u00a0", "\u2003", "\x0b"]


def test_trim_step(duck, spark):
    rng = random.Random("trim")
    values = [rng.choice(SPACES) + rng.choice(["a", "中 文", "", "x\u3000y"]) + rng.choice(SPACES) for _ in range(200)]
    _step_both(duck, spark, "trim", None, values + [None])
    lists = [f"{rng.choice(SPACES)}a{rng.choice(SPACES)},{rng.choice(SPACES)}" for _ in range(50)] + [None, ""]
    split_duck = sql(STEPS["split"], "duckdb")(_field(), '"v"', [","])
    split_spark = sql(STEPS["split"], "spark")(_field(), "`v`", [","])
    _both(duck, spark, {"v": lists}, STEPS["trim"].sql_duckdb(_field("l"), split_duck, None),
          STEPS["trim"].sql_spark(_field("l"), split_spark, None))


LISTS = ['["a", "b"]', "['api', 'file']", '[]', '[ ]', '  ["a"]', '["a",]', '["a", " ", ""]', '[null, "x"]',
         '[true, false]', '[["x"], {"a": "b", "c": [1, 2]}]', '["\\u00e9\\n", "a\\"b", "\\ud83d\\ude00"]', '[1, 2, -3]',
         '[0]', 'a,b', '', None, '{"a": 1}', '[', '["a"] x', '["a",,]', "['it''s']", '["x\\/y"]', '[[], {}]',
         '["中文", "Ａ"]', '["a"]\n', '\t["a"]', '["a"] ', "['a', \"b\"]", '[{"a": "x,y", "b": null}]', '[1.5]',
         '[1e5]', '[NaN]', '["\\u0000"]', '[",", "]"]', '[{"k": "v"},]', '[[1,],]',
         '["\u3000", "\u00a0a", "\t", "\u2003"]', '\u3000["a"]']


def test_parse_list_step(duck, spark):
    """parse_list: JSON lists and Python list text; invalid_list where DuckDB's json_valid says so.
    (Numbers other than integers are written differently by the two engines' JSON readers and are
    left out here: see docs/scale-out.md.)"""
    values = [v for v in LISTS if v is None or not any(f in v for f in ("1.5", "1e5", "NaN"))]
    _step_both(duck, spark, "parse_list", None, values)


NUMBERS = ["1", "-1", "+5", "1,000", "1，000", "12345678901234567890", "999999999999999999", "1.0", "1.5", "1e3",
           " 12 ", "", "x", "0", "-0", "1.23", "1.234", "0.001", "1.2300", "1e-2", "1.5e1", "1E2", ".5", "5.", "1 0",
           "100000000000000000", "99999999999999999", "99999999999999999.99", "1e17", "NaN", "inf", "0x10",
           "1_000", "1__000", "_1", "1_", "1_0.5", "1.0_5", "1e1_0", "1_e1", "12\x0b", "\t12\n", "+.5", "--1", "1.23456789", "12345678.123456", "1.0000000001", None, "1e999", "1e-999", "1.5e+1"]


def test_number_steps(duck, spark):
    _step_both(duck, spark, "parse_integer", None, NUMBERS, what="terminal")
    for unit in ("元", "万元", "亿元"):
        _step_both(duck, spark, "parse_amount", unit, NUMBERS, what="terminal")


def _mapping_field(dialect: str, *, null_values=(), code_list=None, unknown=False, on_unmapped="quarantine",
                   shape="s", pretrimmed=False) -> FieldSql:
    std = SimpleNamespace(code_lists={"cl": SimpleNamespace(values=["a", "unknown"] if unknown else ["a"])})
    return FieldSql(std=std, mapping=SimpleNamespace(null_values=list(null_values)),
                    fdef=SimpleNamespace(on_invalid="quarantine", on_unmapped=on_unmapped, code_list=code_list),
                    fm=SimpleNamespace(source="v"), null_values=list(null_values), pretrimmed=pretrimmed,
                    hw=lambda e: e, initial="", shape=shape, dialect=dialect)


def test_concat_step(duck, spark):
    rng = random.Random("concat")
    cols = {"v": [rng.choice(["a", None, "", " b "]) for _ in range(60)],
            "区县": [rng.choice(["x", None, "None", " None ", "", "\u3000y"]) for _ in range(60)],
            "街道": [rng.choice(["s", None, "-", "t t"]) for _ in range(60)]}
    for null_values in ([], ["None", "-"]):
        _step_both(duck, spark, "concat", ["区县", "街道"], cols, from_=("t as src", "t as src"),
                   field=lambda d, nv=null_values: _mapping_field(d, null_values=nv))


def _lookups(duck, spark) -> None:
    """The crosswalk and code lookups of macros/lookups.sql and their Spark twins, over seeds."""
    crosswalks = [("js", "cl", "甲", "a", "approved"), ("js", "cl", "乙", "a", "approved"),
                  ("js", "cl", "丙", "b", "proposed"), ("js", "cl", "a\x1fb", "a", "approved"),
                  ("js", "cl", "a", "b", "approved"), ("js", "other", "丁", "a", "approved"),
                  ("zj", "cl", "戊", "a", "approved")]
    codes = [("cl", "a", "甲乙", "A"), ("cl", "b", "乙", "B"), ("cl", "c", "乙", "C"), ("sex", "1", "男", "male")]
    duck.execute("create or replace table crosswalks (source_id varchar, code_list varchar, source_value varchar, "
                 "target_code varchar, status varchar)")
    duck.executemany("insert into crosswalks values (?, ?, ?, ?, ?)", crosswalks)
    duck.execute("create or replace table code_lists (code_list varchar, code varchar, label_zh varchar, "
                 "label_en varchar)")
    duck.executemany("insert into code_lists values (?, ?, ?, ?)", codes)
    spark.createDataFrame(crosswalks, "source_id string, code_list string, source_value string, "
                          "target_code string, status string").createOrReplaceTempView("crosswalks")
    spark.createDataFrame(codes, "code_list string, code string, label_zh string, label_en string"
                          ).createOrReplaceTempView("code_lists")
    text = (ROOT / "macros" / "lookups.sql").read_text(encoding="utf-8")

    def body(name: str) -> str:
        start = text.index("%}", text.index(f"macro {name}(")) + 2
        return text[start:text.index("{% endmacro %}", start)]
    cw = body("tongban_crosswalk_lookup").replace("{{ source_id }}", "js").replace("{{ code_list }}", "cl")
    cl = body("tongban_code_lookup").replace("{{ code_list }}", "cl")
    from tongban.standards.rules.spark_parts import code_lookup, crosswalk_lookup
    for name, d, s in [("cw_cl", cw, crosswalk_lookup("js", "cl")), ("cl_cl", cl, code_lookup("cl"))]:
        d = d.replace("{{ ref('crosswalks') }}", "crosswalks").replace("{{ ref('code_lists') }}", "code_lists")
        s = s.replace("{{ ref('crosswalks') }}", "crosswalks").replace("{{ ref('code_lists') }}", "code_lists")
        duck.execute(f"create or replace table {name} as {d}")
        spark.sql(s).createOrReplaceTempView(name)


def test_lookups(duck, spark):
    """The lookups' maps and the approved content's version are DuckDB's."""
    _lookups(duck, spark)
    d = duck.execute("select lookup, pending, version from cw_cl").fetchone()
    s = spark.sql("select lookup, pending, version from cw_cl").collect()[0]
    assert (dict(d[0]), dict(d[1]), d[2]) == (s[0], s[1], s[2])
    assert dict(duck.execute("select lookup from cl_cl").fetchone()[0]) == spark.sql("select lookup from cl_cl").collect()[0][0]


CODES = ["甲", "乙", "丙", "a", "b", "甲乙", "x", "", None, "a\x1fb", "A"]


@pytest.mark.parametrize("step", ["crosswalk", "match_code"])
@pytest.mark.parametrize("unknown", [False, True])
@pytest.mark.parametrize("on_unmapped", ["quarantine", "warn"])
def test_code_steps(duck, spark, step, unknown, on_unmapped):
    _lookups(duck, spark)
    cte = "cw_cl" if step == "crosswalk" else "cl_cl"
    joined = (f"t as src cross join {cte}", f"t as src cross join {cte}")
    rng = random.Random(step)
    for shape, values in [("s", CODES), ("l", [None, "[]"] + [str(rng.sample(range(len(CODES) - 1), rng.randint(1, 3)))
                                                       for _ in range(30)])]:
        def field(d: str, shape=shape):
            return _mapping_field(d, code_list="cl", unknown=unknown, on_unmapped=on_unmapped, shape=shape)
        if shape == "s":
            _step_both(duck, spark, step, "cl", values, what="terminal", field=field, from_=joined)
            continue
        # a list column: the codes at the listed positions
        pieces_d = "[" + ", ".join("'" + v + "'" if v is not None else "null" for v in CODES[:-1]) + "]"
        pieces_s = "array(" + ", ".join("'" + v + "'" if v is not None else "null" for v in CODES[:-1]) + ")"
        cd, cs = field("duckdb"), field("spark")
        bd = f"list_transform(json_extract(v, '$[*]')::int[], lambda i: ({pieces_d})[i + 1])"
        bs = f"transform(from_json(v, 'array<int>'), i -> element_at({pieces_s}, i + 1))"
        vd = sql(STEPS[step], "duckdb", "terminal")(cd, bd, "cl")
        vs = sql(STEPS[step], "spark", "terminal")(cs, bs, "cl")
        _both(duck, spark, {"v": values}, vd, vs, from_=joined)
        for (dc, _, _), (sc, _, _) in zip(cd.checks, cs.checks, strict=True):
            _both(duck, spark, {"v": values}, f"coalesce({dc}, false)", f"coalesce({sc}, false)", from_=joined)


def test_half_width_and_null_values(duck, spark):
    from tongban.standards.rules import spark_parts
    from tongban.standards.rules.spark import trim as spark_trim
    from tongban.standards.rules.sqlparts import half_width_sql, nulls, nulls_trimmed, trim_sql

    values = ["１３８", "ＡＢＣ　ｘ", "abc", "（０２１）", "中文", "", None, "～！", "\u3000None\u3000", " - "]
    _both(duck, spark, {"v": values}, half_width_sql('"v"'), spark_parts.half_width("`v`"))
    for nv in (["None", "-"], []):
        _both(duck, spark, {"v": values}, nulls('"v"', nv), spark_parts.nulls("`v`", nv))
        _both(duck, spark, {"v": values}, nulls_trimmed('"v"', trim_sql('"v"'), nv),
              spark_parts.nulls_trimmed("`v`", spark_trim("`v`"), nv))
