"""One mapping field's SQL: its delivered column read (null values, half-width), then its steps
from the step catalogue (tongban.standards.rules.STEPS) in order, the terminal step last."""

from __future__ import annotations

from dataclasses import dataclass

from tongban.standards.load import Standards
from tongban.standards.models import FieldDef, FieldMapping, Mapping
from tongban.standards.rules import DIALECT, FORMATS, STEPS, FieldSql, spark_parts, sql
from tongban.standards.rules.sqlparts import half_width_sql, json_object_sql, nulls_trimmed, quote_source_column


@dataclass
class Compiled:
    """One field's SQL: ``before`` is the value entering the terminal step (also what a reason
    quotes), ``value`` the final expression, ``checks`` (condition, reason, blocking) triples.
    With ``ref``, the terminal step reads the column ``ref`` (which holds ``before``) instead of
    repeating the expression."""

    before: str
    value: str
    checks: list[tuple[str, str, bool]]
    #: "s" a value, "l" a list: the shape of ``before``
    shape: str = "s"


def reads_half_width(fdef: FieldDef, fm: FieldMapping | None = None) -> bool:
    """Identifiers and phone numbers (a validator's field, an ID number, a phone): their delivered
    value is read half-width, before any step (a remove_regex pattern is written in ASCII)."""
    step = fm is not None and bool(fm.steps) and STEPS[fm.steps[-1].op].half_width
    fmt = FORMATS.get(fdef.format)
    return (fdef.validator is not None or fdef.pii in ("id_number", "phone")
            or (fmt is not None and fmt.half_width) or step)


def field_columns(fm) -> list[str]:
    """The delivery columns one mapping field reads: its source and the columns a step appends
    (``concat``); nothing else of the row enters its value."""
    cols = [fm.source] if fm.source else []
    for step in fm.steps:
        cols += [c for c in STEPS[step.op].columns(step.arg) if c not in cols]
    return cols


def used_columns(m: Mapping) -> list[str]:
    """The delivery columns a mapping's fields read, in delivery order."""
    used = {c for fm in m.fields.values() for c in field_columns(fm)}
    return [c.name for c in m.delivery.columns if c.name in used]


def compile_field(std: Standards, m: Mapping, fdef: FieldDef, ref: str | None = None,
                  pretrimmed: bool = False, dialect: str = DIALECT) -> Compiled:
    """One field's SQL over the delivery's rows ``src``. With ``pretrimmed`` the rows also hold
    each used column trimmed (:func:`tongban.standards.rules.sqlparts.trimmed_column`), which the
    null values and ``trim`` use. ``dialect``: "duckdb" or "spark" (each step's twin)."""
    fm = m.fields[fdef.name]
    null_values = m.null_values if fm.null_values is None else fm.null_values
    on_spark = dialect == "spark"
    half = spark_parts.half_width if on_spark else half_width_sql
    hw = half if reads_half_width(fdef, fm) else (lambda e: e)
    c = FieldSql(std, m, fdef, fm, null_values, pretrimmed, hw, initial="", dialect=dialect)
    # the null values are compared with the delivered text, trimmed
    if fm.source is None:
        expr = "cast(null as string)" if on_spark else "null::varchar"
    elif on_spark:
        expr = spark_parts.nulls_trimmed(hw(f"src.{spark_parts.source_column(fm.source)}"),
                                         c.raw_trimmed(fm.source), null_values)
    else:
        expr = nulls_trimmed(hw(f"src.{quote_source_column(fm.source)}"), c.raw_trimmed(fm.source), null_values)
    c.initial = expr
    steps = list(fm.steps)
    terminal = steps.pop() if steps and STEPS[steps[-1].op].terminal else None
    for step in steps:
        expr = sql(STEPS[step.op], dialect)(c, expr, step.arg)
    shape = c.shape
    # A nested JSON object is no value of a standard field (only a step that reads JSON reads it,
    # and only lists): the field is left empty with its own reason, never published as the
    # object's text. The reason quotes the emptied value, so nothing of the object reaches a reason.
    objects = [] if any(STEPS[s.op].reads_json for s in fm.steps) else field_columns(fm)
    if objects:
        is_json = spark_parts.json_object if on_spark else json_object_sql
        is_object = " or ".join(is_json(c.raw_trimmed(col)) for col in objects)
        expr = f"case when {is_object} then null else {expr} end"
        c.checks.append((is_object, "nested_object", fdef.on_invalid == "quarantine"))
    before = expr
    b = ref if ref is not None else before
    if terminal is None:
        value = b
        if c.code_list is not None:
            value = "'unknown'" if c.has_unknown else value
        return Compiled(before=before, value=value, checks=c.checks, shape=shape)
    value = sql(STEPS[terminal.op], dialect, "terminal")(c, b, terminal.arg)
    return Compiled(before=before, value=value, checks=c.checks, shape=shape)
