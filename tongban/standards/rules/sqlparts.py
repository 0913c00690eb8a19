"""DuckDB SQL building blocks the rule kinds and the dbt target share: the trimmed and half-width
reading of a delivered value, the patterns of e-mail, phone and amount text, quoting of delivery
column names. Every value from a mapping becomes a literal through ``quote_literal``."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from tongban.common.sqlquote import has_jinja, quote_literal
from tongban.common.validators import FULL_WIDTH, HALF_WIDTH

# Spaces, tabs, newlines, the ideographic space and no-break space; written with chr() so the
# generated SQL files hold no control characters.
TRIM_CHARS = "(' ' || chr(9) || chr(10) || chr(13) || chr(12288) || chr(160))"
TRIM_EDGE_RE = r"^[ \t\n\r\x{3000}\x{a0}]|[ \t\n\r\x{3000}\x{a0}]$"  # the same characters, for RE2
EMAIL_RE = r"^[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}$"
# A fixed line (area code 0xx/0xxx, 7-8 digits) or a mobile (11 digits from 1, possibly masked).
PHONE_FIXED_RE = r"(?:^|[^0-9])\(?(0[1-9][0-9]{1,2})\)?-?([1-9][0-9]{6,7})(?:[^0-9]|$)"
PHONE_MOBILE_RE = r"(?:^|[^0-9*])(1[3-9][0-9][0-9*]{4}[0-9]{4})(?:[^0-9*]|$)"
# An amount's text: sign, digits, fraction (without its trailing zeros) and exponent, so its
# decimal places are counted on what was delivered, before any cast could round them away.
AMOUNT_PARTS_RE = r"^\s*[+-]?[0-9]*\.?([0-9]*?)0*(?:[eE]([+-]?[0-9]+))?\s*$"


def quote_source_column(name: str) -> str:
    """Quote a delivery column name (any script; the loader already refused quotes and control chars).
    An identifier cannot be split like a literal, so a name dbt's Jinja would evaluate is refused
    (the lint names its file and line first)."""
    if '"' in name or any(ord(c) < 32 for c in name) or not name or has_jinja(name):
        raise ValueError(f"unsafe column name {name!r}")
    return '"' + name + '"'


def nulls_trimmed(expr: str, trimmed: str, null_values: list[str],
                  literal: Callable[[str], str] = quote_literal) -> str:
    """``expr``, but null where the ``trimmed`` text is one of ``null_values`` (``literal``: the
    dialect's quoting)."""
    if not null_values:
        return expr
    literals = ", ".join(literal(v) for v in null_values)
    return f"case when {trimmed} in ({literals}) then null else {expr} end"


def issue_list(items: list[tuple[str, str]], empty: str, open_: str, close: str) -> str:
    """(condition, reason struct) pairs -> the list of the reasons whose condition holds, in a
    dialect's list syntax (``open_`` the items ``close`` filters the nulls out). The list is
    built only for the few rows where some condition holds (building a list per row costs more
    than evaluating the conditions twice for those few)."""
    if not items:
        return empty
    body = ",\n            ".join(f"case when {cond} then {struct} end" for cond, struct in items)
    any_holds = "\n            or ".join(f"({cond})" for cond, _ in items)
    return f"case when {any_holds}\n        then {open_}\n            {body}\n        {close} else {empty} end"


def nulls(expr: str, null_values: list[str]) -> str:
    if not null_values:
        return expr
    literals = ", ".join(quote_literal(v) for v in null_values)
    return f"case when trim({expr}, {TRIM_CHARS}) in ({literals}) then null else {expr} end"


def trim_sql(expr: str) -> str:
    """``trim(expr, TRIM_CHARS)``, but only for the few values that start or end with one of those
    characters (a trim with a character set costs several times a regular-expression test)."""
    return f"case when regexp_matches({expr}, {quote_literal(TRIM_EDGE_RE)}) then trim({expr}, {TRIM_CHARS}) else {expr} end"


def half_width_sql(expr: str) -> str:
    """``expr`` with full-width ASCII and the ideographic space made half-width, like
    :func:`tongban.common.validators.half_width`. ``translate`` costs ~30 times a plain read, so only
    values with a non-ASCII character (more bytes than characters) pay it."""
    return (f"case when strlen({expr}) = length({expr}) then {expr} "
            f"else translate({expr}, {quote_literal(FULL_WIDTH)}, {quote_literal(HALF_WIDTH)}) end")


def json_object_sql(text: str) -> str:
    """Whether ``text`` (trimmed) is a JSON object: a delivery's nested object, which intake kept as
    its JSON text. chr(123) is '{', written so the generated SQL holds no brace for Jinja."""
    return f"(starts_with({text}, chr(123)) and json_valid({text}))"


def amount_places_fit_sql(text: str, places: int) -> str:
    """Whether ``text`` states at most ``places`` decimal places (trailing zeros aside, exponent
    counted; text that is no number passes: its cast fails and says so). Most amounts show at a
    glance that they fit (no exponent, few characters after the point); only the rest pay for
    the regular expression (~4 times the cost)."""
    parts = f"regexp_extract({text}, {quote_literal(AMOUNT_PARTS_RE)}, ['fraction', 'exponent'])"
    stated = (f"list_transform([{parts}], lambda p: length(p.fraction) "
              f"- coalesce(try_cast(nullif(p.exponent, '') as integer), 0))[1]")
    point = f"strpos({text}, '.')"
    return (f"case when strpos({text}, 'e') = 0 and strpos({text}, 'E') = 0 "
            f"and ({point} = 0 or length({text}) - {point} <= {places}) then true "
            f"else {stated} <= {places} end")


def trimmed_column(name: str) -> str:
    """The staging models' column holding delivery column ``name`` trimmed (computed once)."""
    return quote_source_column(name + "__trim")


def yaml_str(s: str) -> str:
    """``s`` as a double-quoted YAML string that dbt's Jinja leaves as it is: dbt renders the values
    of its YAML files (descriptions, test arguments), so a ``{`` that would open Jinja is written
    as the constant expression ``{{ '{' }}``, which renders back to ``{`` — the text is never run."""
    inert = re.sub(r"\{(?=[{%#])", "{{ '{' }}", s)
    return '"' + inert.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class Lists:
    """A dialect's map lookup and list functions (lambdas over ``x``), for the code steps."""

    get: Callable[[str, str], str]
    any: Callable[[str, str], str]
    transform: Callable[[str, str], str]


DUCKDB_LISTS = Lists(get=lambda m, k: f"map_extract_value({m}, {k})",
                     any=lambda b, pred: f"len(list_filter({b}, lambda x: {pred})) > 0",
                     transform=lambda b, fn: f"list_transform({b}, lambda x: {fn})")
