"""The staging models on Spark give DuckDB's rows (issue 19, brief "stage"): every mapping of the
standard whose delivery exists — the samples with their injected defects (births and licences,
four provinces) and the real catalogues of the four provinces and the 22 cities — goes through a
DuckDB run (``tongban run``: intake lands the raw Parquet, dbt builds the staging views), then the
Spark SQL of ``staging_sql(std, m, dialect="spark")`` runs on a local SparkSession over the same
raw Parquet (``raw.<source>__<entity>``) and the same seeds, and its rows must equal DuckDB's
staging view row by row (as multisets; lists and structs compared as Python values). A
difference fails showing the first differing rows.

The Jinja of the Spark model is rendered by a tiny renderer here (``source(...)`` and ``ref(...)``
are the only Jinja a staging model holds), so the test runs without dbt-spark.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from tests.spark_session import local_spark
from tests.workdirs import work_env
from tongban.common.config import settings
from tongban.standards.load import load_standards
from tongban.standards.rules.spark import spark_ident, spark_literal
from tongban.standards.targets.dbt import generated_files, sources_yml, staging_sql

pytest.importorskip("pyspark", reason="the spark extra is not installed (make env-spark)")

pytestmark = pytest.mark.spark

ROOT = Path(__file__).parents[2]
SAMPLE_ROWS, SAMPLE_SEED = 400, 20261204
KEY = "spark-staging-test-key-0123456789abcdef"
SEEDS = ("crosswalks", "code_lists")


@pytest.fixture(scope="module")
def std():
    return load_standards(ROOT / "standards")


def _tongban(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("tongban")
    return subprocess.run([str(exe), *args], cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=3600)


@pytest.fixture(scope="module")
def duck_run(tmp_path_factory, std) -> Path:
    """A DuckDB run over the samples and every catalogue a mapping names: its build directory."""
    inbox = tmp_path_factory.mktemp("stage-inbox")
    for kind in ("births", "licenses"):
        proc = _tongban("sample", kind, "--rows", str(SAMPLE_ROWS), "--seed", str(SAMPLE_SEED), "--out", str(inbox),
                        env={})
        assert proc.returncode == 0, proc.stderr[-2000:]
    reference = settings().reference_dir
    for m in std.mappings:
        if m.delivery.file and m.delivery.file.startswith("opendata_catalogs/"):
            (inbox / "opendata_catalogs").mkdir(exist_ok=True)
            link = inbox / m.delivery.file
            if not link.exists():
                link.symlink_to(reference / m.delivery.file)
    work = tmp_path_factory.mktemp("stage-run")
    proc = _tongban("run", "--without-airflow", "--format", "json", env=work_env(work, inbox, KEY))
    # 0, or 3 when a delivery is held by its gate threshold (the staging views are built either way)
    assert proc.returncode in (0, 3), f"tongban run: exit {proc.returncode}\n{proc.stderr[-4000:]}"
    return work / "build"


@pytest.fixture(scope="module")
def spark(tmp_path_factory, duck_run):
    """A local Spark with the raw Parquet as ``raw.<source>__<entity>`` and the seeds DuckDB built."""
    session = local_spark(tmp_path_factory.mktemp("spark-warehouse"), "tongban-staging")
    session.sql("create database if not exists raw")
    for parquet in sorted((duck_run / "raw").glob("*/*.parquet")):
        table = spark_ident(f"{parquet.parent.name}__{parquet.stem}")
        session.sql(f"create table raw.{table} using parquet location {spark_literal(str(parquet))}")
    load_seeds(session, duck_run / "warehouse.duckdb")
    yield session
    session.stop()


_SPARK_TYPES = {"VARCHAR": "string", "BIGINT": "bigint", "INTEGER": "int", "BOOLEAN": "boolean", "DATE": "date",
                "DOUBLE": "double"}


def load_seeds(session, warehouse: Path) -> None:
    """The seeds as DuckDB's run loaded them (same columns, types and values), as Spark views."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for seed in SEEDS:
            columns = con.execute(f"describe standards.{seed}").fetchall()
            schema = ", ".join(f"`{name}` {_SPARK_TYPES[type_]}" for name, type_, *_ in columns)
            rows = con.execute(f"select * from standards.{seed}").fetchall()
            session.createDataFrame(rows, schema).createOrReplaceTempView(f"seed__{seed}")


_JINJA = re.compile(r"\{\{ (source|ref)\('([a-z0-9_]+)'(?:, '([a-z0-9_]+)')?\) \}\}")


def render(model: str) -> str:
    """The staging model's Jinja (``source`` and ``ref`` of the seeds only) as Spark relations;
    anything else left of Jinja fails (dbt would render it)."""
    def relation(found: re.Match) -> str:
        kind, a, b = found.groups()
        return f"raw.{a}__{b}" if kind == "source" else f"seed__{a}"
    text = _JINJA.sub(relation, model)
    assert "{{" not in text and "{%" not in text and "{#" not in text, "unrendered Jinja in a Spark model"
    return "\n".join(line for line in text.splitlines() if not line.startswith("--"))


def _hashable(value):
    if hasattr(value, "asDict"):
        value = value.asDict()
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple((k, _hashable(v)) for k, v in value.items())
    return value


def _staged(std, duck_run):
    landed = {(p.parent.name, p.stem) for p in (duck_run / "raw").glob("*/*.parquet")}
    return [m for m in std.mappings if (m.source_id, m.entity) in landed]


def test_every_mapping_is_landed(std, duck_run):
    """The comparison covers every mapping of the standard (none silently left out)."""
    assert {(m.source_id, m.entity) for m in _staged(std, duck_run)} == {(m.source_id, m.entity) for m in std.mappings}


@pytest.mark.parametrize("entity", ["birth_registration", "business_license", "data_resource"])
def test_staging_models_equal_duckdb(std, duck_run, spark, entity):
    mappings = [m for m in _staged(std, duck_run) if m.entity == entity]
    assert mappings
    failures, compared = [], 0
    with duckdb.connect(str(duck_run / "warehouse.duckdb"), read_only=True) as con:
        for m in mappings:
            model = f"stg_{m.source_id}__{m.entity}"
            cur = con.execute(f"select * from staging.{model}")
            duck_cols = [d[0] for d in cur.description]
            duck_rows = Counter(_hashable(list(r)) for r in cur.fetchall())
            frame = spark.sql(render(staging_sql(std, m, "spark")))
            spark_rows = Counter(_hashable(list(r)) for r in frame.collect())
            if frame.columns != duck_cols:
                failures.append(f"{model}: columns differ\n  duckdb {duck_cols}\n  spark  {frame.columns}")
                continue
            only_duck, only_spark = duck_rows - spark_rows, spark_rows - duck_rows
            if only_duck or only_spark:
                failures.append(f"{model}: {sum(only_duck.values())} row(s) only on DuckDB, "
                                f"{sum(only_spark.values())} only on Spark (of {sum(duck_rows.values())})\n"
                                f"  first on DuckDB only: {list(only_duck)[:2]}\n"
                                f"  first on Spark only:  {list(only_spark)[:2]}")
            assert sum(duck_rows.values()) > 0, f"{model}: no rows to compare"
            compared += 1
    assert not failures, "\n".join(failures)
    assert compared == len(mappings)


def test_spark_files_keep_duckdbs_paths(std):
    """generated_files(std, "spark") writes the staging models and sources at DuckDB's paths; the
    sources name the registered raw tables (no external location)."""
    duck, spark_files = generated_files(std), generated_files(std, "spark")
    assert set(spark_files) == set(duck)
    assert all("::" not in text for path, text in spark_files.items() if path.startswith("models/staging/"))
    yml = sources_yml(std, "js", "spark")
    assert "external_location" not in yml and 'identifier: "js__birth_registration"' in yml
    assert "schema: raw" in yml
    assert json.dumps(duck) == json.dumps(generated_files(std, "duckdb"))
