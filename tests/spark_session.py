"""The local SparkSession the Spark tests share the settings of (issue 19): one core, one shuffle
partition, no UI, warehouse and Derby under a temporary directory, and tongban's session settings
(tongban.standards.rules.spark.session_conf)."""

from __future__ import annotations

from pathlib import Path


def local_spark(warehouse: Path, app: str):
    from pyspark.sql import SparkSession  # the optional extra: imported only where Spark runs

    from tongban.standards.rules.spark import session_conf

    builder = (SparkSession.builder.master("local[1]").appName(app)
               .config("spark.sql.warehouse.dir", str(warehouse))
               .config("spark.ui.enabled", "false")
               .config("spark.sql.shuffle.partitions", "1")
               .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={warehouse}"))
    for key, value in session_conf().items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


REFERENCE_TABLES = ("gbt2260_current", "gbt2260_history", "nbs_statistical_codes", "gbt4754_classes")


def with_reference(session, con):
    """``session`` with DuckDB's reference tables (read from ``con``) as Spark's ``reference.*``."""
    session.sql("create database if not exists reference")
    for table in REFERENCE_TABLES:
        frame = con.execute(f"select * from reference.{table}").df()
        session.createDataFrame(frame).write.mode("overwrite").saveAsTable(f"reference.{table}")
    return session
