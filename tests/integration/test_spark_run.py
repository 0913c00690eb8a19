"""Whole runs on both engines give the same answers (issue 19): the samples with their injected
defects (births and licences, four provinces) and the four real province catalogues go through
``tongban run --engine duckdb`` and ``tongban run --engine spark``, each in build, exchange and
feedback directories of its own (the same pseudonym key), and per entity and mart:

* the published rows (multisets; run ids and timestamps left out),
* the quarantined rows with their reason codes (the rejections tables each run left in its
  warehouse: on Spark, what Spark built, read back into DuckDB),
* the conservation counts of every delivery (delivered, published, held, quarantined, status)

must be equal. A difference fails with the first differing rows. Both sides must have rows:
an empty comparison fails too.

The pieces of the engine are checked on a real local Spark as well (without the generated Spark
models): the portable marts give DuckDB's rows, the seeds are loaded without SQL text (a quote, a
backslash and ``${...}`` in a value come back as they were), a landed raw Parquet reads back the
same rows, and the copy back into DuckDB keeps types (lists, lists of structs, decimals, dates) and
empty tables.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from tests.workdirs import work_env
from tongban.common.config import settings

pytest.importorskip("pyspark", reason="the spark extra is not installed (make env-spark)")

pytestmark = pytest.mark.spark

ROOT = Path(__file__).parents[2]
SAMPLE_ROWS, SAMPLE_SEED = 400, 20261204
CATALOGUES = ("nju-websoft_CNPDS_shanghai_shanghai.json", "nju-websoft_CNPDS_jiangsu_jiangsu.json",
              "nju-websoft_CNPDS_zhejiang_zhejiang.json", "cqsss_ChinaOpenDataPortal_anhui_anhui.json")
ENTITIES = ("birth_registration", "business_license", "data_resource")
MARTS = ("births_by_month_division", "licenses_by_industry_division")
KEY = "spark-parity-test-key-0123456789abcdef"
#: what differs between two runs by construction: the run's id, and when
IGNORED = ("run_id",)


def _tongban(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tongban.cli", *args], cwd=ROOT, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=3600)


@pytest.fixture(scope="module")
def inbox(tmp_path_factory) -> Path:
    inbox = tmp_path_factory.mktemp("spark-inbox")
    for kind in ("births", "licenses"):
        proc = _tongban("sample", kind, "--rows", str(SAMPLE_ROWS), "--seed", str(SAMPLE_SEED), "--out", str(inbox),
                        env={})
        assert proc.returncode == 0, proc.stderr[-2000:]
    (inbox / "opendata_catalogs").mkdir()
    for name in CATALOGUES:
        (inbox / "opendata_catalogs" / name).symlink_to(settings().reference_dir / "opendata_catalogs" / name)
    return inbox


def _engine_run(tmp_path_factory, inbox: Path, engine: str) -> dict:
    work = tmp_path_factory.mktemp(f"run-{engine}")
    env = work_env(work, inbox, KEY) | {"TONGBAN_ENGINE": engine}
    proc = _tongban("run", "--engine", engine, "--format", "json", env=env)
    summary = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else {}
    # 0, or 3 when a delivery is held by its gate threshold: the same on both engines (compared below)
    assert proc.returncode in (0, 3) and summary.get("exit_code") == proc.returncode, \
        f"tongban run --engine {engine}: exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    report = json.loads((work / "build" / "runs" / "latest.json").read_text(encoding="utf-8"))
    return {"work": work, "summary": summary, "report": report, "exit": proc.returncode}


@pytest.fixture(scope="module")
def duck_run(tmp_path_factory, inbox):
    return _engine_run(tmp_path_factory, inbox, "duckdb")


@pytest.fixture(scope="module")
def spark_run(tmp_path_factory, inbox, duck_run):  # one after the other: two cores
    return _engine_run(tmp_path_factory, inbox, "spark")


def _hashable(value):
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple((k, _hashable(v)) for k, v in value.items())
    return value


def _rows(con, relation: str) -> tuple[list[str], Counter]:
    """The columns (name and DuckDB type) and the rows of ``relation`` as a multiset."""
    cols = [(c[0], c[1]) for c in con.execute(f"describe {relation}").fetchall()
            if c[0] not in IGNORED and not c[0].endswith("_at")]
    # reason_codes are a set (DuckDB's list_distinct keeps no order): compared sorted
    quoted = ", ".join(("list_sort(reason_codes)" if c == "reason_codes" else '"' + c.replace('"', '""') + '"')
                       for c, _ in cols)
    return cols, Counter(_hashable(list(r)) for r in con.execute(f"select {quoted} from {relation}").fetchall())


def _assert_same(what: str, duck: tuple[list[str], Counter], spark: tuple[list[str], Counter]) -> int:
    assert duck[0] == spark[0], f"{what}: columns or their types differ\nduckdb {duck[0]}\nspark  {spark[0]}"
    only_duck, only_spark = duck[1] - spark[1], spark[1] - duck[1]
    assert sum(duck[1].values()) > 0 and sum(spark[1].values()) > 0, f"{what}: no rows to compare"
    assert not only_duck and not only_spark, (
        f"{what}: {sum(only_duck.values())} row(s) only on DuckDB, {sum(only_spark.values())} only on Spark "
        f"(of {sum(duck[1].values())}); columns {duck[0]}\nfirst on DuckDB only: {list(only_duck)[:3]}\n"
        f"first on Spark only:  {list(only_spark)[:3]}")
    return sum(duck[1].values())


def test_the_comparison_fails_on_a_difference():
    """The comparison the parity tests make can fail: one row changed, a type changed, no rows."""
    cols = [("a", "VARCHAR"), ("n", "BIGINT")]
    same = (cols, Counter({("x", 1): 2, ("y", 2): 1}))
    assert _assert_same("t", same, (cols, Counter({("x", 1): 2, ("y", 2): 1}))) == 3
    with pytest.raises(AssertionError, match="1 row\\(s\\) only on DuckDB, 1 only on Spark"):
        _assert_same("t", same, (cols, Counter({("x", 1): 1, ("y", 2): 1, ("x", 2): 1})))
    with pytest.raises(AssertionError, match="types differ"):
        _assert_same("t", same, ([("a", "VARCHAR"), ("n", "INTEGER")], same[1]))
    with pytest.raises(AssertionError, match="no rows"):
        _assert_same("t", (cols, Counter()), (cols, Counter()))


def _published(run: dict, relation: str):
    from tongban import exchange

    con = exchange.connect_catalog(run["work"] / "exchange")
    try:
        return _rows(con, relation)
    finally:
        con.close()


def _warehouse(run: dict, relation: str):
    with duckdb.connect(str(run["work"] / "build" / "warehouse.duckdb"), read_only=True) as con:
        return _rows(con, relation)


def test_the_spark_run_says_so(duck_run, spark_run):
    assert spark_run["report"]["engine"] == "spark" == spark_run["summary"]["engine"]
    assert duck_run["report"]["engine"] == "duckdb" == duck_run["summary"]["engine"]
    assert spark_run["exit"] == duck_run["exit"]
    assert set(spark_run["report"]["snapshots"]) == set(duck_run["report"]["snapshots"]) >= {*ENTITIES, *MARTS}


@pytest.mark.parametrize("relation", [*ENTITIES, *MARTS])
def test_published_rows_are_equal(duck_run, spark_run, relation):
    _assert_same(f"published {relation}", _published(duck_run, relation), _published(spark_run, relation))


@pytest.mark.parametrize("entity", ENTITIES)
def test_quarantined_rows_and_reasons_are_equal(duck_run, spark_run, entity):
    relation = f"harmonized.{entity}__rejections"
    _assert_same(f"quarantined {entity}", _warehouse(duck_run, relation), _warehouse(spark_run, relation))


def test_feedback_to_the_producers_is_equal(duck_run, spark_run):
    """What each province gets back (its quarantined rows with their reasons and details), file by file."""
    def feedback(run):
        out = {}
        for path in sorted((run["work"] / "feedback").rglob("*.csv")):
            source, name = path.parent.name, path.name.split("__", 1)[1]  # <run_id>__<entity>.csv
            lines = path.read_text(encoding="utf-8").splitlines()
            out[(source, name)] = (lines[0], Counter(lines[1:]))
        return out

    duck, spark = feedback(duck_run), feedback(spark_run)
    assert sorted(duck) == sorted(spark)
    for key in duck:
        assert duck[key][0] == spark[key][0], f"feedback {key}: headers differ"
        only_duck, only_spark = duck[key][1] - spark[key][1], spark[key][1] - duck[key][1]
        assert not only_duck and not only_spark, (f"feedback {key}: first lines only on DuckDB {list(only_duck)[:3]}, "
                                                  f"only on Spark {list(only_spark)[:3]}")
    assert sum(sum(c.values()) for _, c in duck.values()) > 0  # rows went back


def test_conservation_counts_are_equal(duck_run, spark_run):
    def counts(run):
        return sorted((d["entity"], d["source_id"], d["status"], d["rows_delivered"], d["rows_published"],
                       d["rows_held"], d["rows_quarantined"], d["gate_success"], d["held_reason"],
                       json.dumps(json.loads(d["top_reasons"]), sort_keys=True))
                      for d in run["report"]["deliveries"])

    duck, spark = counts(duck_run), counts(spark_run)
    diff = [(d, s) for d, s in zip(duck, spark, strict=True) if d != s]
    assert not diff, f"{len(diff)} deliveries differ (duckdb, spark): {diff[:3]}"
    assert sum(d[4] for d in duck) > 0 and sum(d[6] for d in duck) > 0  # rows published and quarantined


# ------------------------------------------------------------------ the engine's pieces, on a real Spark


@pytest.fixture(scope="module")
def pieces(tmp_path_factory):
    """A Spark session made by the engine over a build directory of its own."""
    from tongban.steps import spark_engine

    work = tmp_path_factory.mktemp("spark-pieces")
    with pytest.MonkeyPatch.context() as mp:
        for var, value in work_env(work).items():
            mp.setenv(var, value)
        mp.setenv(spark_engine.MASTER_ENV, "local[1]")
        s = settings()
        spark = spark_engine.spark_session(s)
        spark_engine.reset(spark, s)
        yield s, spark
        spark.stop()


def test_seed_values_are_never_sql(pieces):
    from tongban.steps import spark_engine

    s, spark = pieces
    seeds = s.spark_project_dir / "seeds"
    (seeds / "generated").mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "seeds" / "_seeds.yml", seeds / "_seeds.yml")
    tricky = ["it's", "back\\slash", "${spark.app.name}", "a'); drop table x; --", "null", "", "全角'值"]
    lines = ["source_id,code_list,source_value,target_code,status,line"]
    lines += [f'zj,open_condition,"{v}",unconditional,approved,{i + 2}' for i, v in enumerate(tricky)]
    (seeds / "generated" / "crosswalks.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (seeds / "generated" / "code_lists.csv").write_text("code_list,code,label_zh,label_en\nx,1,一,one's\n",
                                                        encoding="utf-8")
    assert spark_engine.register_seeds(spark, s) == ["standards.crosswalks", "standards.code_lists"]
    got = sorted((r.line, r.source_value) for r in spark.table("standards.crosswalks").collect())
    # dbt's CSV reader reads an empty value and "null" as null, on both engines
    want = [(i + 2, None if v in ("null", "") else v) for i, v in enumerate(tricky)]
    assert got == want
    assert [tuple(r) for r in spark.table("standards.code_lists").collect()] == [("x", "1", "一", "one's")]


def test_raw_parquet_and_reference_read_back_the_same(pieces, tmp_path):
    from tongban.steps import spark_engine
    from tongban.steps.results import Landed, Run, Source

    s, spark = pieces
    raw = s.raw_dir / "zj" / "birth_registration.parquet"
    raw.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect() as con:
        con.execute("copy (select i::varchar as a, 'x''y\\z' as b, i::bigint as source_row_number from range(5) t(i)) "
                    f"to '{raw}' (format parquet)")
    run = Run(run_id="r", started_at="t", entities=["birth_registration"],
              sources=[Source(source_id="zj", entity="birth_registration", province_code="33"),
                       Source(source_id="sh", entity="birth_registration", province_code="31")],
              standard_versions={}, pii={})
    landed = Landed.from_xcom({"source_id": "zj", "entity": "birth_registration", "province_code": "33",
                               "delivery_file": "zj/births.jsonl", "status": "landed", "raw_path": str(raw),
                               "rows_delivered": 5})
    names = spark_engine.register_raw(spark, s, run, [landed])
    assert names == ["raw.`zj__birth_registration`"]  # sh landed nothing: no table
    assert sorted(tuple(r) for r in spark.table("raw.zj__birth_registration").collect()) == \
        [(str(i), "x'y\\z", i) for i in range(5)]
    tables = spark_engine.register_reference(spark, s)
    assert {"reference.gbt2260_current", "reference.gbt4754_classes"} <= set(tables)
    with duckdb.connect() as con:
        from tongban.common.reference import load_reference

        load_reference(con, s.reference_dir)
        for name in tables:
            want = Counter(tuple(r) for r in con.execute(f"select * from {name}").fetchall())
            assert Counter(tuple(r) for r in spark.table(name).collect()) == want, name


def test_copy_back_keeps_types_and_empty_tables(pieces):
    from tongban.steps import spark_engine

    s, spark = pieces
    spark.sql("create database if not exists harmonized")
    spark.sql("""create table harmonized.t using parquet as select
        'a' as s, date '2024-02-29' as d, cast(12.5 as decimal(38, 2)) as amount, cast(3 as bigint) as n,
        array('x', 'y') as l,
        array(named_struct('reason', 'r', 'field', 'f', 'value', cast(null as string))) as reasons,
        cast(array() as array<struct<reason:string,field:string,value:string>>) as none""")
    spark.sql("create table harmonized.empty using parquet as select * from harmonized.t where false")
    spark.sql("create view harmonized.v as select * from harmonized.t")  # a view's rows are copied too
    assert sorted(spark_engine.copy_back(spark, s, ("harmonized",))) == \
        ["harmonized.empty", "harmonized.t", "harmonized.v"]
    with duckdb.connect(str(s.warehouse_path), read_only=True) as con:
        types = {t: [c[1] for c in con.execute(f"describe harmonized.{t}").fetchall()] for t in ("t", "empty", "v")}
        row = con.execute("select * from harmonized.t").fetchall()
        assert con.execute("select * from harmonized.v").fetchall() == row
        assert con.execute("select count(*) from harmonized.empty").fetchone()[0] == 0
    struct = "STRUCT(reason VARCHAR, field VARCHAR, \"value\" VARCHAR)[]"
    assert types["t"] == types["empty"] == types["v"] == \
        ["VARCHAR", "DATE", "DECIMAL(38,2)", "BIGINT", "VARCHAR[]", struct, struct]
    import datetime
    import decimal

    assert row == [("a", datetime.date(2024, 2, 29), decimal.Decimal("12.50"), 3, ["x", "y"],
                    [{"reason": "r", "field": "f", "value": None}], [])]


def test_profile_runs_spark_with_the_session_settings():
    """profiles.yml's spark target has exactly session_conf() as its server-side parameters."""
    import yaml

    from tongban.standards.rules.spark import session_conf
    from tongban.steps import spark_engine

    target = yaml.safe_load((ROOT / "profiles.yml").read_text(encoding="utf-8"))["tongban"]["outputs"]["spark"]
    assert (target["type"], target["method"]) == ("spark", "session")
    zone = session_conf()["spark.sql.session.timeZone"]
    params = {k: v.replace("{{ env_var('" + spark_engine.TIMEZONE_ENV + "', 'UTC') }}", zone)
              for k, v in target["server_side_parameters"].items()}
    assert params == session_conf()
