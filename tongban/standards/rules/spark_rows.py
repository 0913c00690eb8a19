"""Spark SQL building blocks of the models after staging (issue 19): the checked, duplicates,
unioned, harmonized and rejections models in Spark's dialect (tongban.standards.targets.dbt_rows
with ``dialect="spark"``) and the cross-field rules' Spark twins.

What differs from DuckDB, and how the twin keeps the answers equal:

* quoting: identifiers in backticks, literals through :func:`spark.spark_literal` (:func:`quoting`
  gives a dialect's pair, so a rule writes its SQL once for both);
* no ``* exclude (...)`` and no ``union all by name`` in Spark 3.5: the models list their columns
  (:func:`staged_columns`: what every staging model of an entity selects, in its order);
* no trailing commas, no ``[]`` / ``{...}`` literals, ``size`` for ``len``, ``concat`` for
  ``list_concat`` (never given a null list here), ``transform``/``filter``/``array_distinct`` for
  the ``list_*`` lambdas;
* ``content_hash``: DuckDB's ``hash(a, b, ...)`` tells a null from a value and keeps positions;
  Spark's ``xxhash64`` skips null arguments (``('x', null)`` and ``(null, 'x')`` would collide),
  so the twin hashes the row's JSON text (:func:`content_hash`: field names as keys, nulls kept
  in lists, an empty list read as null as DuckDB's hash does). The values differ from DuckDB's, the verdicts do not: the hash is only compared
  between rows that share a key (equal content, equal hash; different content, different hash
  but for a 2^-64 chance on either engine).
"""

from __future__ import annotations

from collections.abc import Callable

from tongban.common.sqlquote import quote_ident, quote_literal
from tongban.standards.rules.spark import spark_ident, spark_literal

DIALECTS = ("duckdb", "spark")

#: the columns every staging model selects after the entity's fields (tongban.standards.targets.dbt:
#: ``mapping_version``, ``crosswalk_version``, its PROVENANCE, then the two issue lists)
STAGED_TAIL = ("mapping_version", "crosswalk_version", "source_id", "delivery_sha256", "source_row_number",
               "run_id", "blocking_issues", "note_issues")

#: the Spark type of a list of reasons (the contract's ``array<struct<reason,field,value>>``)
ISSUES_TYPE = "array<struct<reason:string,field:string,value:string>>"
ISSUES_EMPTY = f"cast(array() as {ISSUES_TYPE})"


def quoting(dialect: str) -> tuple[Callable[[str], str], Callable[[str], str]]:
    """(identifier, literal) quoting of ``dialect``."""
    if dialect == "duckdb":
        return quote_ident, quote_literal
    if dialect == "spark":
        return spark_ident, spark_literal
    raise ValueError(f"unknown SQL dialect {dialect!r}; expected one of {', '.join(DIALECTS)}")


def current_date(dialect: str) -> str:
    """The run date (Spark: the session zone's, which tongban.standards.rules.spark.session_conf
    sets to DuckDB's)."""
    return "current_date()" if dialect == "spark" else "current_date"


def staged_columns(ent: object) -> list[str]:
    """The columns of a staging model of ``ent``, in order."""
    return [f.name for f in ent.fields] + list(STAGED_TAIL)  # type: ignore[attr-defined]


def content_hash(fields: list[object]) -> str:
    """A 64-bit hash of the fields' columns that tells nulls and positions apart (see the module).
    An empty list hashes as a null one, as in DuckDB (``hash('x', [])`` = ``hash('x', null)``):
    two deliveries of a key that differ only there are a repeat on both engines."""
    def value(f: object) -> str:
        col = spark_ident(f.name)  # type: ignore[attr-defined]
        return f"case when size({col}) > 0 then {col} end" if f.type.endswith("[]") else col  # type: ignore[attr-defined]

    pairs = ", ".join(f"{spark_literal(f.name)}, {value(f)}" for f in fields)  # type: ignore[attr-defined]
    return f"xxhash64(to_json(named_struct({pairs})))"
