"""The Spark engine (issue 19): ``tongban run --engine spark`` builds the dbt models on Spark.

dbt-spark's ``session`` method runs Spark in the dbt process: its cursor calls
``SparkSession.builder.getOrCreate()``, which returns the session made here first (a local master,
the warehouse under ``build/spark-warehouse``, Derby's home under ``build/``, the UI off, few
shuffle partitions, and tongban.standards.rules.spark.session_conf()). Then, per run:

1. **Before the build** every delivery's landed raw Parquet is registered as the Spark table
   ``raw.<source_id>__<entity>`` (what the Spark sources yml names), the reference tables
   (tongban.common.reference, the same rows DuckDB loads) as ``reference.<table>``, the seeds
   as ``standards.<seed>`` (read as ``dbt seed`` reads them, written without SQL: :func:`register_seeds`).
2. **The build**: one ``dbt build --target spark`` of the run's entities from the Spark project
   (``build/dbt-spark/project``: the static files and the models generated in Spark's dialect).
   Spark rebuilds every table every run: its plain Parquet tables cannot delete rows, so there
   are no incremental fingerprints, no checked tables built early, and no reuse of a gate result
   or of a published snapshot's rows.
3. **Back to DuckDB**: every table Spark wrote in the intermediate, harmonized and marts schemas
   is copied from its Parquet into the DuckDB warehouse under the same ``schema.table`` name.
   The gate (GX on DuckDB, the same generated suites), conservation, publish and feedback then
   run unchanged, on what Spark built: the documented choice (docs/scale-out.md "Spark").

pyspark and dbt-spark are the optional ``spark`` extra: imported here only when Spark runs.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from tongban.common.config import Settings, quiet_third_parties
from tongban.common.reference import load_reference
from tongban.common.sqlquote import quote_ident, quote_literal
from tongban.standards.rules.spark import session_conf, spark_ident, spark_literal
from tongban.steps.harmonize import (TransformError, entity_counts, load_reference_tables, published_marts,
                                     run_dbt)
from tongban.steps.incremental import forget_fingerprints
from tongban.steps.loaded import standards
from tongban.steps.project import build_project
from tongban.steps.results import Landed, Run, Transformed

#: the Spark master (default ``local[2]``: the two cores of these machines)
MASTER_ENV = "TONGBAN_SPARK_MASTER"
MASTER_DEFAULT = "local[2]"
#: the driver's memory (spark.driver.memory; local mode runs everything in the driver)
MEMORY_ENV = "TONGBAN_SPARK_DRIVER_MEMORY"
MEMORY_DEFAULT = "4g"  # 2g ran out of heap (OutOfMemoryError) at 50,000 rows a province
#: what profiles.yml's spark target reads for its server-side time zone (set from session_conf())
TIMEZONE_ENV = "TONGBAN_SPARK_TIMEZONE"
#: the dbt folder of the build directory for the Spark project's target and logs
DBT_DIR = "dbt-spark"
#: the layers read back into DuckDB after the build (staging models are views: nothing to copy)
COPIED_SCHEMAS = ("intermediate", "harmonized", "marts")
#: the settings of tongban's own session besides session_conf() (Parquet timestamps as DuckDB reads them)
LOCAL_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    # a run is ~180 jobs with very large plans (every rule inline): the UI listeners' history of them
    # stays in the driver's heap even with the UI off, so keep only the last few
    "spark.sql.ui.retainedExecutions": "5",
    "spark.ui.retainedJobs": "20",
    "spark.ui.retainedStages": "20",
    "spark.sql.shuffle.partitions": "2",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.session.timeZone": "UTC",  # replaced by session_conf()'s
}


def spark_conf(s: Settings) -> dict[str, str]:
    """Every setting of the session tongban makes (static ones included)."""
    derby = s.build_dir / "spark-derby"
    return {
        "spark.master": os.environ.get(MASTER_ENV) or MASTER_DEFAULT,
        "spark.app.name": "tongban",
        "spark.driver.memory": os.environ.get(MEMORY_ENV) or MEMORY_DEFAULT,
        "spark.sql.warehouse.dir": str(s.spark_warehouse_dir),
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={derby}",
        **LOCAL_CONF,
        **session_conf(),
    }


def spark_session(s: Settings) -> Any:
    """The local SparkSession dbt-spark's session method then finds (getOrCreate)."""
    from pyspark.sql import SparkSession  # the optional spark extra (slow to import): only when Spark runs

    (s.build_dir / "spark-derby").mkdir(parents=True, exist_ok=True)
    builder = SparkSession.builder
    for key, value in spark_conf(s).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    for key, value in session_conf().items():  # a session made before (same process) gets them too
        spark.conf.set(key, value)
    return spark


def reset(spark: Any, s: Settings) -> None:
    """Nothing of an earlier build stays: every database but ``default`` is dropped (the raw
    tables are external: their Parquet stays), and the warehouse directory is emptied."""
    for db in spark.catalog.listDatabases():
        if db.name != "default":
            spark.sql(f"drop database if exists {spark_ident(db.name)} cascade")
    for table in spark.catalog.listTables("default"):
        if not table.isTemporary:
            spark.sql(f"drop table if exists default.{spark_ident(table.name)}")
    shutil.rmtree(s.spark_warehouse_dir, ignore_errors=True)
    s.spark_warehouse_dir.mkdir(parents=True, exist_ok=True)


def raw_table(source_id: str, entity: str) -> str:
    """The Spark name of a delivery's landed rows (the contract: ``raw.<source_id>__<entity>``)."""
    return f"raw.{spark_ident(f'{source_id}__{entity}')}"


def register_raw(spark: Any, s: Settings, run: Run, intakes: list[Landed]) -> list[str]:
    """Every delivery of the run whose raw Parquet is there (a landed one, and the empty file with
    the declared columns that a missing or rejected one lands) as an external Spark table."""
    spark.sql("create database if not exists raw")
    landed = {(i.source_id, i.entity): i.raw_path for i in intakes if i.raw_path}
    names = []
    for src in run.sources:
        path = Path(landed.get((src.source_id, src.entity)) or s.raw_dir / src.source_id / f"{src.entity}.parquet")
        if not path.is_file():
            continue
        name = raw_table(src.source_id, src.entity)
        spark.sql(f"create table {name} using parquet location {spark_literal(str(path))}")
        names.append(name)
    return names


def register_reference(spark: Any, s: Settings) -> list[str]:
    """The GB/T 2260 / 4754 reference tables as ``reference.<table>``: loaded by DuckDB exactly as
    into the warehouse (tongban.common.reference), written as Parquet, registered in Spark."""
    import duckdb  # heavy enough to keep lazy

    out = s.build_dir / "spark-reference"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    spark.sql("create database if not exists reference")
    names = []
    with duckdb.connect() as con:
        load_reference(con, s.reference_dir)
        tables = [t for (t,) in con.execute("select table_name from information_schema.tables "
                                            "where table_schema = 'reference' order by 1").fetchall()]
        for table in tables:
            path = out / f"{table}.parquet"
            con.execute(f"copy reference.{quote_ident(table)} to {quote_literal(str(path))} (format parquet)")
            spark.sql(f"create table reference.{spark_ident(table)} using parquet location {spark_literal(str(path))}")
            names.append(f"reference.{table}")
    return names


def register_seeds(spark: Any, s: Settings) -> list[str]:
    """The project's seeds (crosswalks, code lists) as ``standards.<seed>``, read by dbt's own CSV
    reader (the same nulls and types as ``dbt seed`` on DuckDB) and written through a DataFrame.

    Not ``dbt seed``: dbt-spark's session cursor pastes each seed value into its INSERT between
    quotes without escaping them (``f"'{value}'"``), so a crosswalk value with a quote, a
    backslash or ``${`` would break the statement or be read as SQL; here no value is ever SQL text."""
    import yaml
    from dbt_common.clients.agate_helper import from_csv  # dbt (heavy): only when Spark runs
    from pyspark.sql.types import IntegerType, StringType, StructField, StructType  # the optional spark extra

    project = s.spark_project_dir
    spark.sql("create database if not exists standards")
    names = []
    for seed in yaml.safe_load((project / "seeds" / "_seeds.yml").read_text(encoding="utf-8"))["seeds"]:
        name = seed["name"]
        path = next((project / "seeds").rglob(f"{name}.csv"))
        declared = (seed.get("config") or {}).get("column_types") or {}
        # the text columns' declared type is the engine's text type (a Jinja expression in the file)
        integers = {c for c, t in declared.items() if str(t).strip().lower() in ("integer", "int", "bigint")}
        table = from_csv(str(path), [c for c in declared if c not in integers])
        schema = StructType([StructField(c, IntegerType() if c in integers else StringType())
                             for c in table.column_names])
        rows = [tuple(None if v is None else int(v) if c in integers else str(v)
                      for c, v in zip(table.column_names, row, strict=True)) for row in table.rows]
        spark.createDataFrame(rows, schema).write.format("parquet").saveAsTable(f"standards.{spark_ident(name)}")
        names.append(f"standards.{name}")
    return names


def copy_back(spark: Any, s: Settings, schemas: tuple[str, ...] = COPIED_SCHEMAS) -> list[str]:
    """Every table (and view) Spark built in ``schemas``, from its Parquet into the DuckDB
    warehouse as a table of the same name (replacing what was there). A view's rows are written
    out by Spark first (``build/spark-export``). Returns ``schema.table`` of each."""
    import duckdb  # heavy enough to keep lazy

    have = {db.name for db in spark.catalog.listDatabases()}
    export = s.build_dir / "spark-export"
    shutil.rmtree(export, ignore_errors=True)
    copied = []
    con = duckdb.connect(str(s.warehouse_path))
    try:
        for schema in (sch for sch in schemas if sch in have):
            con.execute(f"create schema if not exists {quote_ident(schema)}")
            for table in spark.catalog.listTables(schema):
                if table.isTemporary:
                    continue
                frame = spark.table(f"{spark_ident(schema)}.{spark_ident(table.name)}")
                if table.tableType == "VIEW":
                    out = export / schema / table.name
                    frame.write.parquet(str(out))
                    files = [str(p) for p in out.glob("*.parquet")]
                else:
                    files = [_local(f) for f in frame.inputFiles()]
                _to_duckdb(con, f"{quote_ident(schema)}.{quote_ident(table.name)}", files, frame.schema)
                copied.append(f"{schema}.{table.name}")
    finally:
        con.close()
    return copied


def _to_duckdb(con: Any, target: str, files: list[str], schema: Any) -> None:
    """``target`` in DuckDB from Spark's Parquet ``files``; without a file (no rows), its columns
    from Spark's ``schema``."""
    if files:
        paths = "[" + ", ".join(quote_literal(f) for f in sorted(files)) + "]"
        con.execute(f"create or replace table {target} as select * from read_parquet({paths})")
    else:
        columns = ", ".join(f"{quote_ident(f.name)} {duckdb_type(f.dataType.simpleString())}" for f in schema)
        con.execute(f"create or replace table {target} ({columns})")


def _local(uri: str) -> str:
    return uri.removeprefix("file://") if uri.startswith("file://") else uri.removeprefix("file:")


_SIMPLE_TYPES = {"string": "varchar", "bigint": "bigint", "int": "integer", "smallint": "smallint",
                 "tinyint": "tinyint", "boolean": "boolean", "double": "double", "float": "float",
                 "date": "date", "timestamp": "timestamptz", "timestamp_ntz": "timestamp", "binary": "blob"}


def duckdb_type(spark_type: str) -> str:
    """A Spark type (``simpleString``) as DuckDB's: what DuckDB reads that type's Parquet as."""
    t = spark_type.strip()
    if t in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[t]
    if t.startswith("decimal("):
        return t
    if t.startswith("array<") and t.endswith(">"):
        return duckdb_type(t[6:-1]) + "[]"
    if t.startswith("struct<") and t.endswith(">"):
        fields = []
        for part in _split_top(t[7:-1]):
            name, _, inner = part.partition(":")
            fields.append(f"{quote_ident(name)} {duckdb_type(inner)}")
        return f"struct({', '.join(fields)})"
    raise ValueError(f"no DuckDB type for Spark's {spark_type}")


def _split_top(text: str) -> list[str]:
    """``a:string,b:array<struct<x:int,y:int>>`` -> its top-level parts."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "<(":
            depth += 1
        elif ch in ">)":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p for p in parts if p]


def transform(s: Settings, run: Run, intakes: list[Landed]) -> Transformed:
    """The run's dbt build on Spark, its tables read back into DuckDB, and the counts."""
    quiet_third_parties()
    s.build_dir.mkdir(parents=True, exist_ok=True)
    load_reference_tables(s)  # the DuckDB warehouse's own (what later steps and DuckDB runs read)
    build_project(standards(s), s.project_root, s.spark_project_dir, dialect="spark")
    os.environ[TIMEZONE_ENV] = session_conf()["spark.sql.session.timeZone"]
    spark = spark_session(s)
    try:
        reset(spark, s)
        register_raw(spark, s, run, intakes)
        register_reference(spark, s)
        register_seeds(spark, s)
        outcome = run_dbt(s.spark_project_dir, warehouse=s.warehouse_path, raw_dir=s.raw_dir, build_dir=s.build_dir,
                          args=["build", "--target", "spark", "--select",
                                *(f"+int_{e}__unioned+" for e in run.entities),
                                "--exclude", "resource_type:seed",
                                # written once (harmonized and rejections read it; copied back)
                                "--vars", '{"tongban_unioned_materialized": "table"}'], dbt_dir=DBT_DIR)
        # DuckDB's record of what its tables were built from no longer describes them
        forget_fingerprints(s.warehouse_path)
        if not outcome.success:
            raise TransformError(f"dbt build on Spark failed in {len(outcome.failures)} node(s):\n"
                                 + "\n".join(outcome.failures))
        copy_back(spark, s)
    finally:
        spark.stop()
    return Transformed(success=True, dbt_nodes=outcome.nodes,
                       counts={e: entity_counts(s, e) for e in run.entities},
                       warehouse=str(s.warehouse_path), marts=published_marts(s, run.entities, DBT_DIR),
                       reused_checked=[], unchanged_entities=[], full_refresh=True, entity_fingerprints={},
                       engine="spark")
