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
from typing import Any

from tongban.common.sqlquote import quote_ident, quote_literal
from tongban.standards.rules.spark import spark_ident, spark_literal
from tongban.standards.rules.spark_parts import ISSUES_EMPTY, issue

DIALECTS = ("duckdb", "spark")

#: the columns every staging model selects after the entity's fields (tongban.standards.targets.dbt:
#: ``mapping_version``, ``crosswalk_version``, its PROVENANCE, then the two issue lists)
STAGED_TAIL = ("mapping_version", "crosswalk_version", "source_id", "delivery_sha256", "source_row_number",
               "run_id", "blocking_issues", "note_issues")



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
# the models (tongban.standards.targets.dbt_rows hands in what it computed from the catalogue)

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


def duplicates(ent: Any, refs: list[str], header: str) -> str:
    """The rules across rows (tongban.standards.targets.dbt_rows.duplicates_sql) over ``refs``,
    the entity's checked models."""
    key_name = ent.key
    key = spark_ident(key_name)
    uniques = [f for f in ent.fields if f.unique and f.name != key_name]
    narrow_cols = ", ".join(["source_id", "source_row_number", key, "content_hash"]
                            + [spark_ident(f.name) for f in uniques])
    union = "\n    union all\n".join(f"    select {narrow_cols} from {{{{ ref('{r}') }}}}" for r in refs)
    occ = {f.name: spark_ident(f.name + "__occurrence") for f in uniques}
    occ_cols = "".join(
        f",\n        case when {spark_ident(f.name)} is not null then row_number() over "
        f"(partition by {spark_ident(f.name)} order by source_id, source_row_number) end as {occ[f.name]}"
        for f in uniques)
    unique_items = "".join(
        f"\n        case when {occ[f.name]} > 1 then "
        f"array({issue(f.name, 'duplicate_value', spark_ident(f.name), f.pii)}) else {ISSUES_EMPTY} end,"
        for f in uniques)
    key_item = (f"case\n            when key_occurrence > 1 and has_conflicting_duplicates\n"
                f"                then array({issue(key_name, 'conflicting_duplicate', key)})\n"
                f"            when key_occurrence > 1\n"
                f"                then array({issue(key_name, 'duplicate_record', key)})\n"
                f"            else {ISSUES_EMPTY}\n        end")
    reasons = f"concat({unique_items}\n        {key_item}\n    )" if uniques else key_item
    unique_any = "".join(f" or {occ[f.name]} > 1" for f in uniques)
    return f"""{header}with
narrow as (
{union}
),

windows as (
    select
        source_id,
        source_row_number,
        {", ".join([key, *(spark_ident(f.name) for f in uniques)])},
        row_number() over (partition by {key} order by source_id, source_row_number) as key_occurrence,
        min(content_hash) over (partition by {key}) <> max(content_hash) over (partition by {key}) as has_conflicting_duplicates{occ_cols}
    from narrow
)

select
    source_id,
    source_row_number,
    {reasons} as cross_row_reasons
from windows
where key_occurrence > 1{unique_any}
"""


def unioned(ent: Any, refs: list[str], header: str, warnings: bool, version: str) -> str:
    """Every delivery of the entity with all its reasons (dbt_rows.unioned_sql): Spark 3.5 has no
    ``union all by name``, and every checked model has the same columns (:func:`checked_columns`),
    so they are listed in one order."""
    cols = checked_columns(ent, warnings)
    listed = ", ".join(spark_ident(c) for c in cols)
    union = "\n    union all\n".join(f"    select {listed} from {{{{ ref('{r}') }}}}" for r in refs)
    kept = "".join(f"    checked.{spark_ident(c)},\n" for c in cols if c not in ("row_reasons", "content_hash"))
    return f"""{header}{{{{ config(materialized=var('tongban_unioned_materialized', 'view')) }}}}
with
checked as (
{union}
),

duplicates as (
    select * from {{{{ ref('int_{ent.entity}__duplicates') }}}}
)

select
{kept}    {spark_literal(version)} as standard_version,
    concat(checked.row_reasons, coalesce(duplicates.cross_row_reasons, {ISSUES_EMPTY})) as reasons
from checked
left join duplicates
    on checked.source_id = duplicates.source_id
    and checked.source_row_number = duplicates.source_row_number
"""


#: on Spark the harmonized model and its rejections are plain tables rebuilt whole on every run: the
#: DuckDB models are incremental by source (macros/incremental_by_source.sql deletes a source's rows
#: and inserts them again), and Spark's Parquet tables cannot delete
TABLE_CONFIG = ("-- on Spark a plain table rebuilt whole on every run (Spark's Parquet tables cannot delete, so\n"
                "-- the DuckDB model's incremental rebuild by source, macros/incremental_by_source.sql, has no twin)\n"
                "{{ config(materialized='table') }}\n")


def published(ent: Any, header: str) -> str:
    """The harmonized table: the rows without a reason (dbt_rows.harmonized_sql)."""
    cols = ",\n    ".join(spark_ident(f.name) for f in ent.fields)
    return f"""{header}{TABLE_CONFIG}with

unioned as (
    select * from {{{{ ref('int_{ent.entity}__unioned') }}}}
)

select
    {cols},
    source_id,
    delivery_sha256,
    source_row_number,
    run_id,
    standard_version,
    mapping_version,
    crosswalk_version
from unioned
where size(reasons) = 0
"""


def rejected(ent: Any, header: str) -> str:
    """The rejections: the rows with a reason and their distinct reason codes (in the order they
    first occur; DuckDB's list_distinct keeps no order, so the codes are a set on both engines)."""
    return f"""{header}{TABLE_CONFIG}with

unioned as (
    select * from {{{{ ref('int_{ent.entity}__unioned') }}}}
)

select
    source_id,
    source_row_number,
    delivery_sha256,
    run_id,
    {spark_ident(ent.key)},
    array_distinct(transform(reasons, r -> r.reason)) as reason_codes,
    reasons,
    standard_version,
    mapping_version,
    crosswalk_version
from unioned
where size(reasons) > 0
"""
