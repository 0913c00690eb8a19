"""Spark SQL twins of the building blocks in tongban.standards.rules.sqlparts and of the staging
model's own DuckDB constructs (issue 19): the issue structs and their lists, the text DuckDB
makes of a list, the half-width reading, null values and the nested-object check.

Every literal goes through :func:`spark_literal`, every identifier through ``spark_ident``.
"""

from __future__ import annotations

from tongban.common.validators import FULL_WIDTH, HALF_WIDTH
from tongban.standards.rules.spark import full_match, java_regex, spark_ident, spark_literal, trim
from tongban.standards.rules import sqlparts
from tongban.standards.rules.sqlparts import AMOUNT_PARTS_RE, Lists, quote_source_column
from tongban.standards.rules.spark_mask import spark_mask

def source_column(name: str) -> str:
    """A delivery column as a Spark identifier (refused like sqlparts.quote_source_column: dbt
    renders the model's text as Jinja)."""
    quote_source_column(name)
    return spark_ident(name)


def trimmed_column(name: str) -> str:
    """The staging models' column holding delivery column ``name`` trimmed (computed once)."""
    return source_column(name + "__trim")


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
    return sqlparts.issue_list(items, ISSUES_EMPTY, "filter(array(", "), x -> x is not null)")


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
    return sqlparts.nulls_trimmed(expr, trimmed, null_values, spark_literal)


def nulls(expr: str, null_values: list[str]) -> str:
    return nulls_trimmed(expr, trim(expr), null_values)


# DuckDB's json_valid (yyjson: trailing commas and NaN/Inf allowed, lone surrogates refused,
# white space = space, tab, newline, carriage return), which Spark lacks: every string token
# becomes "", every other scalar 0, then the innermost arrays and objects collapse to 0 until
# one value is left (anything else leaves a character no pattern accepts)
_WS = "[ \\t\\n\\r]*"
_HEX = "[0-9a-fA-F]"
_JSON_STRING = ('"(?:[^"\\\\\\x00-\\x1f]|\\\\["\\\\/bfnrt]'
                f"|\\\\u(?![dD][89a-fA-F]){_HEX}{{4}}"
                f"|\\\\u[dD][89abAB]{_HEX}{{2}}\\\\u[dD][c-fC-F]{_HEX}{{2}})*+\"")
_JSON_SCALAR = "-?(?:0|[1-9][0-9]*+)(?:\\.[0-9]++)?(?:[eE][+-]?[0-9]++)?|-?(?i:nan|infinity|inf)|true|false|null"
_VALUE = '(?:0|"")'
_JSON_ARRAY = f"\\[{_WS}(?:{_VALUE}{_WS}(?:,{_WS}{_VALUE}{_WS})*+(?:,{_WS})?)?\\]"
_MEMBER = f'""{_WS}:{_WS}{_VALUE}{_WS}'
_JSON_OBJECT = f"\\{{{_WS}(?:{_MEMBER}(?:,{_WS}{_MEMBER})*+(?:,{_WS})?)?\\}}"


def json_valid(text: str) -> str:
    """DuckDB's ``json_valid(text)`` (false for null text, as ``coalesce`` callers expect: DuckDB
    gives null; use it where null and false mean the same)."""
    scalars = (f"regexp_replace(regexp_replace({text}, {spark_literal(_JSON_STRING)}, '\"\"'), "
               f"{spark_literal(_JSON_SCALAR)}, '0')")
    depth = f"greatest(length({text}) - length(translate({text}, '[\\{{', '')), 1)"
    collapse = (f"aggregate(sequence(1, {depth}), {scalars}, (acc, i) -> regexp_replace(regexp_replace(acc, "
                f"{spark_literal(_JSON_ARRAY)}, '0'), {spark_literal(_JSON_OBJECT)}, '0'))")
    return f"({collapse} rlike {spark_literal('^' + _WS + _VALUE + _WS + chr(92) + 'z')})"


def json_object(text: str) -> str:
    """Whether ``text`` (trimmed) is a JSON object (sqlparts.json_object_sql)."""
    return f"(startswith({text}, {spark_literal(chr(123))}) and {json_valid(text)})"


def _json_strings_or(other: str) -> str:
    """A pattern matching a JSON string token or ``other`` (group 1 is the string), to rewrite
    valid JSON outside its strings."""
    return f"({_JSON_STRING})|{other}"


#: what DuckDB's one-argument trim() removes: the Unicode space separators (Zs), not tabs or newlines
DUCK_TRIM_SET = "".join(chr(c) for c in (32, 160, 5760, *range(8192, 8203), 8239, 8287, 12288))


def duck_trim(expr: str) -> str:
    """DuckDB's ``trim(expr)`` (Spark's trim(expr) removes spaces only)."""
    return f"trim(BOTH {spark_literal(DUCK_TRIM_SET)} FROM {expr})"


def parse_list(expr: str) -> tuple[str, str]:
    """The parse_list step (steps.ParseList): (the list, the condition of ``invalid_list``).
    JSON lists and the text of Python lists (quotes made double); validity is DuckDB's
    json_valid (:func:`json_valid`); Spark's JSON reader takes no trailing comma, so those are
    dropped first (outside strings)."""
    normalised = f"replace({expr}, {spark_literal(chr(39))}, '\"')"
    ok = f"({json_valid(normalised)} and startswith({duck_trim(normalised)}, '['))"
    trailing_comma = spark_literal(_json_strings_or(",(?=" + _WS + "[\\]}])"))
    no_trailing = f"regexp_replace({normalised}, {trailing_comma}, '$1')"
    parsed = f"from_json({no_trailing}, 'array<string>')"
    value = f"case when {ok} then filter({parsed}, x -> nullif({duck_trim('x')}, '') is not null) end"
    return value, f"{expr} is not null and not coalesce({ok}, false)"


def amount_places_fit(text: str, places: int) -> str:
    """sqlparts.amount_places_fit_sql: whether ``text`` states at most ``places`` decimal places
    (RE2's \\s is Java's without the vertical tab)."""
    pattern = spark_literal(java_regex(AMOUNT_PARTS_RE.replace("\\s", "[\\t\\n\\f\\r ]")))
    stated = (f"length(regexp_extract({text}, {pattern}, 1)) "
              f"- coalesce(cast(nullif(regexp_extract({text}, {pattern}, 2), '') as int), 0)")
    point = f"instr({text}, '.')"
    return (f"case when instr({text}, 'e') = 0 and instr({text}, 'E') = 0 "
            f"and ({point} = 0 or length({text}) - {point} <= {places}) then true "
            f"else {stated} <= {places} end")


def parse_integer(b: str) -> tuple[str, str]:
    """The parse_integer step: (the value, the condition of ``invalid_number``)."""
    text = f"replace(replace({b}, ',', ''), '，', '')"
    value = f"case when {full_match(text, '[+-]?[0-9]{1,18}')} then cast({text} as bigint) end"
    return value, f"{b} is not null and ({value}) is null"


# Spark: try_element_at is null for a missing key (as map_extract_value); size(filter(..)) keeps
# DuckDB's two-valued count where exists() would be null
SPARK_LISTS = Lists(get=lambda m, k: f"try_element_at({m}, {k})",
                    any=lambda b, pred: f"size(filter({b}, x -> {pred})) > 0",
                    transform=lambda b, fn: f"transform({b}, x -> {fn})")


def _map(keys: str, values: str, where: str) -> str:
    """A map built from the rows ``where`` holds, in a fixed order (the keys are unique)."""
    return f"map_from_entries(array_sort(collect_list(struct({keys}, {values})) filter (where {where})))"


def crosswalk_lookup(source_id: str, code_list: str) -> str:
    """The twin of macros/lookups.sql tongban_crosswalk_lookup: ``lookup`` (approved entries),
    ``pending`` (proposed ones) and ``version``, the same md5 as DuckDB's (entries ordered by
    source value, then target code; fields joined by chr(31), entries by chr(30))."""
    approved, proposed = "status = 'approved'", "status = 'proposed'"
    entries = (f"array_sort(collect_list(struct(source_value, target_code)) filter (where {approved}))")
    joined = f"concat_ws(chr(30), transform({entries}, e -> e.source_value || chr(31) || e.target_code))"
    return (f"    select\n        {_map('source_value', 'target_code', approved)} as lookup,\n"
            f"        {_map('source_value', 'target_code', proposed)} as pending,\n"
            f"        left(md5({joined}), 12) as version\n"
            "    from {{ ref('crosswalks') }}\n"
            f"    where source_id = {spark_literal(source_id)} and code_list = {spark_literal(code_list)}")


def code_lookup(code_list: str) -> str:
    """The twin of macros/lookups.sql tongban_code_lookup: codes and their Chinese labels -> code."""
    cl = spark_literal(code_list)
    return ("    select " + _map("k", "v", "k is not null") + " as lookup\n    from (\n"
            "        select k, min(code) as v\n        from (\n"
            f"            select code as k, code from {{{{ ref('code_lists') }}}} where code_list = {cl}\n"
            "            union all\n"
            f"            select label_zh as k, code from {{{{ ref('code_lists') }}}} where code_list = {cl}\n"
            "        ) as labelled\n        group by k\n    ) as codes")
