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
  in lists, an empty list read as null as DuckDB's hash does). The values differ from DuckDB's,
  the verdicts do not: the hash is only compared between rows that share a key (equal content,
  equal hash; different content, different hash but for a 2^-64 chance on either engine).

The model templates themselves are written once, in dbt_rows, with :data:`WORDS` (what each
dialect writes differently); only the checked model's row rules have a Spark template of their own
here (:func:`row_rules`: DuckDB's leans on ``* exclude``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tongban.common.sqlquote import quote_ident, quote_literal
from tongban.standards.rules.spark import spark_ident, spark_literal
from tongban.standards.rules.spark_parts import ISSUES_EMPTY

DIALECTS = ("duckdb", "spark")

#: the columns every staging model selects after the entity's fields (tongban.standards.targets.dbt:
#: ``mapping_version``, ``crosswalk_version``, its PROVENANCE, then the two issue lists)
STAGED_TAIL = ("mapping_version", "crosswalk_version", "source_id", "delivery_sha256", "source_row_number",
               "run_id", "blocking_issues", "note_issues")


@dataclass(frozen=True)
class Words:
    """What the model templates (tongban.standards.targets.dbt_rows) write differently per dialect."""

    ident: Callable[[str], str]
    literal: Callable[[str], str]
    one: str  # a list of one reason ({} the reason)
    empty: str  # an empty list of reasons
    concat: str  # lists concatenated
    size: str  # a list's length
    codes: str  # the distinct reason codes of ``reasons``
    comma: str  # DuckDB's trailing comma at the end of a select list ("" on Spark)
    union: str  # the union of the checked models


WORDS = {
    "duckdb": Words(quote_ident, quote_literal, "[{}]", "[]", "list_concat", "len",
                    "list_distinct(list_transform(reasons, lambda r: r.reason))", ",", "union all by name"),
    "spark": Words(spark_ident, spark_literal, "array({})", ISSUES_EMPTY, "concat", "size",
                   "array_distinct(transform(reasons, r -> r.reason))", "", "union all"),
}


def quoting(dialect: str) -> tuple[Callable[[str], str], Callable[[str], str]]:
    """(identifier, literal) quoting of ``dialect``."""
    if dialect in WORDS:
        return WORDS[dialect].ident, WORDS[dialect].literal
    raise ValueError(f"unknown SQL dialect {dialect!r}; expected one of {', '.join(DIALECTS)}")


def current_date(dialect: str) -> str:
    """The run date (Spark: the session zone's, which tongban.standards.rules.spark.session_conf
    sets to DuckDB's)."""
    return "current_date()" if dialect == "spark" else "current_date"


def staged_columns(ent: Any) -> list[str]:
    """The columns of a staging model of ``ent``, in order."""
    return [f.name for f in ent.fields] + list(STAGED_TAIL)


def content_hash(fields: list[Any]) -> str:
    """A 64-bit hash of the fields' columns that tells nulls and positions apart (see the module).
    An empty list hashes as a null one, as in DuckDB (``hash('x', [])`` = ``hash('x', null)``):
    two deliveries of a key that differ only there are a repeat on both engines."""
    def value(f: Any) -> str:
        col = spark_ident(f.name)
        return f"case when size({col}) > 0 then {col} end" if f.type.endswith("[]") else col

    pairs = ", ".join(f"{spark_literal(f.name)}, {value(f)}" for f in fields)
    return f"xxhash64(to_json(named_struct({pairs})))"


# --------------------------------------------------------------------------------------------
# the checked model (tongban.standards.targets.dbt_rows hands in what it computed from the catalogue)

def checked_columns(ent: Any, warnings: bool) -> list[str]:
    """The columns of a checked model, in the order DuckDB's ``* exclude (...)`` leaves them
    (``note_issues`` moves behind ``row_reasons`` when warn rules add to it)."""
    staged = [c for c in staged_columns(ent) if c not in ("blocking_issues", "note_issues")]
    return staged + (["content_hash", "row_reasons", "note_issues"] if warnings
                     else ["note_issues", "content_hash", "row_reasons"]) + ["checked_build"]


def row_rules(ent: Any, relation: str, extra: list[str], rules: str, notes: str | None) -> str:
    """The row rules over one delivery's staged rows (``relation``): ``extra`` columns computed
    first (the validators' problem codes), ``rules`` the list of the rules' reasons, ``notes``
    the warn rules' (or None)."""
    fields = [f for f in ent.fields if f.name != ent.key]
    cols = "".join(f",\n        {c}" for c in [f"{content_hash(fields)} as content_hash", *extra])
    kept = [c for c in staged_columns(ent) if c not in ("blocking_issues", "note_issues")]
    head = "".join(f"    {spark_ident(c)},\n" for c in kept)
    note = "    note_issues,\n" if notes is None else ""
    after = f",\n    concat(note_issues, {notes}) as note_issues" if notes is not None else ""
    return f"""with
staged as (
    select * from {relation}
),

checked as (
    select
        *{cols}
    from staged
)

select
{head}{note}    content_hash,
    concat(blocking_issues, {rules}) as row_reasons{after}
from checked
"""


#: on Spark the harmonized model and its rejections are plain tables rebuilt whole on every run: the
#: DuckDB models are incremental by source (macros/incremental_by_source.sql deletes a source's rows
#: and inserts them again), and Spark's Parquet tables cannot delete
TABLE_CONFIG = ("-- on Spark a plain table rebuilt whole on every run (Spark's Parquet tables cannot delete, so\n"
                "-- the DuckDB model's incremental rebuild by source, macros/incremental_by_source.sql, has no twin)\n"
                "{{ config(materialized='table') }}\n")
