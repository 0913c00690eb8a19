"""The engine setting (issue 19): ``tongban run --engine`` / TONGBAN_ENGINE, duckdb by default, and
the Spark types the copy back into DuckDB declares for a table Spark left without a file."""

from __future__ import annotations

import pytest

from tongban.common.config import ENGINE_ENV, settings
from tongban.steps.spark_engine import duckdb_type


def test_duckdb_is_the_default_and_spark_the_other(monkeypatch):
    monkeypatch.delenv(ENGINE_ENV, raising=False)
    assert settings().engine == "duckdb"
    monkeypatch.setenv(ENGINE_ENV, " Spark ")
    assert settings().engine == "spark"
    assert settings().spark_project_dir == settings().build_dir / "dbt-spark" / "project"


def test_an_unknown_engine_is_refused(monkeypatch):
    monkeypatch.setenv(ENGINE_ENV, "polars")
    with pytest.raises(ValueError, match="one of duckdb, spark"):
        settings()


@pytest.mark.parametrize(("spark", "duck"), [
    ("string", "varchar"), ("bigint", "bigint"), ("date", "date"), ("decimal(38,2)", "decimal(38,2)"),
    ("array<string>", "varchar[]"),
    ("array<struct<reason:string,field:string,value:string>>",
     'struct("reason" varchar, "field" varchar, "value" varchar)[]'),
    ("struct<a:array<struct<x:int,y:decimal(10,2)>>,b:boolean>",
     'struct("a" struct("x" integer, "y" decimal(10,2))[], "b" boolean)'),
])
def test_spark_types_as_duckdb_reads_their_parquet(spark, duck):
    assert duckdb_type(spark) == duck


def test_a_type_without_a_twin_is_refused():
    with pytest.raises(ValueError, match="no DuckDB type"):
        duckdb_type("map<string,string>")
