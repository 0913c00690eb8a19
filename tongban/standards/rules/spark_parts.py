"""Spark SQL twins of the building blocks in tongban.standards.rules.sqlparts and of the staging
model's own DuckDB constructs (issue 19): the issue structs and their lists, the text DuckDB
makes of a list, the half-width reading, null values and the nested-object check.

Every literal goes through :func:`spark_literal`, every identifier through ``spark_ident``.
"""

from __future__ import annotations

from tongban.common.validators import FULL_WIDTH, HALF_WIDTH
from tongban.standards.rules.spark import spark_literal, trim
from tongban.standards.rules.spark_mask import spark_mask

#: the type of ``blocking_issues`` / ``note_issues`` / ``reasons`` (DuckDB: struct(reason, field, value)[])
ISSUE_TYPE = "array<struct<reason:string,field:string,value:string>>"
ISSUES_EMPTY = f"cast(array() as {ISSUE_TYPE})"


def issue(field: str, reason: str, value_expr: str, pii: str | None = None, reason_is_sql: bool = False) -> str:
    """A reason struct (``value`` masked for a personal-data field, at most 200 characters)."""
    value = f"cast(({value_expr}) as string)"
    if pii:
        value = spark_mask(pii, value)
    reason_sql = reason if reason_is_sql else spark_literal(reason)
    return (f"named_struct('reason', {reason_sql}, 'field', {spark_literal(field)}, "
            f"'value', left({value}, 200))")


def issue_list(items: list[tuple[str, str]]) -> str:
    """(condition, reason struct) pairs -> the array of the reasons whose condition holds
    (built only where some condition holds, as the DuckDB original)."""
    if not items:
        return ISSUES_EMPTY
    body = ",\n            ".join(f"case when {cond} then {struct} end" for cond, struct in items)
    any_holds = "\n            or ".join(f"({cond})" for cond, _ in items)
    return (f"case when {any_holds}\n        then filter(array(\n            {body}\n        ), "
            f"x -> x is not null) else {ISSUES_EMPTY} end")


#: DuckDB (2.0) quotes a list's string element when it is empty, reads 'null' in any case, starts
#: or ends with ASCII white space, or holds one of these characters
_QUOTED_RE = "^[\\t\\n\\x0B\\f\\r ]|[\\t\\n\\x0B\\f\\r ]\\z|[\"'(),:=\\[\\\\\\]{}]"


def duck_list_text(expr: str) -> str:
    """The text DuckDB's ``list::varchar`` makes of an ``array<string>`` (``[a, 'b, c', NULL]``):
    what a reason quotes of a list value."""
    # inside the quotes a backslash and a quote are escaped with a backslash
    q, bs = spark_literal("'"), spark_literal("\\")
    quoted = (f"concat({q}, replace(replace(x, {bs}, {spark_literal(2 * chr(92))}), "
              f"{q}, {spark_literal(chr(92) + chr(39))}), {q})")
    element = (f"case when x is null then 'NULL' "
               f"when x = '' or lower(x) = 'null' or x rlike {spark_literal(_QUOTED_RE)} then {quoted} "
               "else x end")
    return f"concat('[', array_join(transform({expr}, x -> {element}), ', '), ']')"


def half_width(expr: str) -> str:
    """``expr`` with full-width ASCII and the ideographic space made half-width
    (sqlparts.half_width_sql; Spark's translate is cheap enough not to test first)."""
    return f"translate({expr}, {spark_literal(FULL_WIDTH)}, {spark_literal(HALF_WIDTH)})"


def nulls_trimmed(expr: str, trimmed: str, null_values: list[str]) -> str:
    if not null_values:
        return expr
    literals = ", ".join(spark_literal(v) for v in null_values)
    return f"case when {trimmed} in ({literals}) then null else {expr} end"


def nulls(expr: str, null_values: list[str]) -> str:
    return nulls_trimmed(expr, trim(expr), null_values)
