"""Spark SQL twins of the DuckDB macros in macros/validators.sql (issue 19): the same checks, the
same problem codes, written as inline Spark SQL expressions.

Spark has no SQL macros (``create macro``), so where DuckDB calls ``gb11643_problem(v)`` from a
macro created on-run-start, the Spark dialect inlines the whole expression; ``v`` must therefore be
a column reference (the generator passes quoted identifiers), not an expression with side effects.
The reference data are the same ``reference.*`` tables (a Spark database of that name).

Spark differs from DuckDB in ways these twins take care of:

* string literals treat ``\\`` as an escape character and concatenate adjacent literals
  (``'a''b'`` is ``'ab'``, not ``a'b``), and ``${name}`` anywhere in the SQL text is substituted
  before parsing: every literal goes through :func:`spark_literal`;
* ``regexp_full_match`` does not exist: ``rlike`` with the pattern anchored (Java regex; the
  patterns here are the RE2 subset both read alike);
* ``EXISTS`` subqueries are allowed in filters only: a correlated ``count(*)`` scalar subquery
  says the same in a select list;
* date parsing needs ``spark.sql.legacy.timeParserPolicy=CORRECTED`` (an impossible date such as
  19490230 is then null, as DuckDB's ``try_strptime`` makes it, instead of an upgrade error) and
  ANSI mode off (``make_date`` of 2021-02-29 is null, not an error); ``current_date`` is the
  session time zone's, so that zone must be the one DuckDB uses: :func:`session_conf` is what a
  Spark session running tongban's SQL is configured with;
* Spark's datetime patterns do not read what DuckDB's strptime reads (``%m`` takes one or two
  digits, white space around the value is skipped): a mapping's date format becomes a regular
  expression and ``make_date`` (:func:`date_regex`).
"""

from __future__ import annotations

import re
from typing import Any

#: the Spark settings tongban's generated SQL relies on (dbt-spark: ``server_side_parameters``),
#: with :func:`session_conf`'s time zone
SESSION_CONF = {
    "spark.sql.variable.substitute": "false",  # no ${...} in SQL text is ever expanded
    "spark.sql.legacy.timeParserPolicy": "CORRECTED",
    "spark.sql.ansi.enabled": "false",
}


def session_conf() -> dict[str, str]:
    """:data:`SESSION_CONF` and the time zone DuckDB's ``current_date`` follows here (the
    machine's, unless DuckDB is told otherwise), so ``not_future`` has the same today on both
    engines; epoch_ms is read in China time whatever the zone."""
    import duckdb  # only to ask DuckDB which zone it uses (kept out of the module's import)

    with duckdb.connect() as con:
        zone = con.execute("select current_setting('TimeZone')").fetchone()[0]
    return {**SESSION_CONF, "spark.sql.session.timeZone": zone}

# ``{`` escaped too: Spark substitutes ``${name}`` in the SQL text before parsing it (variable
# substitution); ``$\{name}`` is not substituted and reads back as ``${name}``
_ESCAPES = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0", "{": "\\{"}


def spark_literal(value: str) -> str:
    """``value`` as a Spark SQL string literal that reads back as exactly ``value``."""
    if not isinstance(value, str):
        raise TypeError(f"expected str, got {type(value).__name__}")
    return "'" + "".join(_ESCAPES.get(c, c) for c in value) + "'"


def spark_ident(name: str) -> str:
    """``name`` as a Spark SQL identifier (backticks; Spark reads double quotes as a string)."""
    if not name or any(ord(c) < 32 for c in name):
        raise ValueError(f"unsafe identifier {name!r}")
    return "`" + name.replace("`", "``") + "`"


def java_regex(pattern: str) -> str:
    """An RE2 pattern (DuckDB's) as Java reads it alike: Java's ``$`` also matches before a final
    newline, RE2's only at the end, so ``$`` outside a character class becomes ``\\z``."""
    if "(?m" in pattern or "(?s" in pattern:
        raise NotImplementedError(f"regex flags in {pattern!r} have no Spark twin yet")
    out, i, in_class = [], 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if ch == "[" and not in_class:
            in_class = True
        elif ch == "]" and in_class:
            in_class = False
        out.append("\\z" if ch == "$" and not in_class else ch)
        i += 1
    return "".join(out)


def full_match(expr: str, pattern: str) -> str:
    """DuckDB's ``regexp_full_match(expr, pattern)`` (null for a null ``expr``)."""
    return f"({expr} rlike {spark_literal('^(?:' + java_regex(pattern) + ')' + chr(92) + 'z')})"


def _digit(s: str, i: int) -> str:
    return f"(ascii(substr({s}, {i}, 1)) - 48)"


def _alnum(s: str, i: int) -> str:
    c = f"substr(upper({s}), {i}, 1)"
    return f"(ascii({c}) - case when {c} <= '9' then 48 else 55 end)"


_GB11643_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_GB11714_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_GB32100_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_CHARS = "[0-9A-HJ-NP-RTUW-Y]"


def gb11643_check_char(s: str) -> str:
    total = " + ".join(f"{_digit(s, i + 1)} * {w}" for i, w in enumerate(_GB11643_WEIGHTS))
    return f"case when {full_match(s, '[0-9]{17}')} then substr('10X98765432', ({total}) % 11 + 1, 1) end"


def gb11643_birth_date(v: str) -> str:
    born = f"to_date(substr({v}, 7, 8), 'yyyyMMdd')"
    return (f"case when {full_match(f'upper({v})', '[0-9]{17}[0-9X]')} "
            f"and {born} between date '1900-01-01' and current_date() then {born} end")


def _exists(table_where: str) -> str:
    return f"((select count(*) from {table_where}) > 0)"


def gb11643_problem(v: str) -> str:
    year = f"greatest(cast(substr({v}, 7, 4) as int), 1981)"
    in_use = _exists(f"reference.gbt2260_history h where h.code = substr({v}, 1, 6) "
                     f"and h.start_year <= {year} and (h.end_year is null or {year} <= h.end_year)")
    return (f"case when {v} is null then null "
            f"when {full_match(v, '[0-9]{15}')} then 'id_legacy_15_digit' "
            f"when not {full_match(f'upper({v})', '[0-9]{17}[0-9X]')} then 'id_malformed' "
            f"when ({gb11643_birth_date(v)}) is null then 'id_invalid_birth_date' "
            f"when ({gb11643_check_char(f'substr({v}, 1, 17)')}) <> upper(substr({v}, 18, 1)) "
            "then 'id_bad_check_character' "
            f"when not {in_use} then 'id_birthplace_not_in_use' end")


def gb11714_check_char(s: str) -> str:
    total = " + ".join(f"{_alnum(s, i + 1)} * {w}" for i, w in enumerate(_GB11714_WEIGHTS))
    return (f"case when {full_match(f'upper({s})', '[0-9A-Z]{8}')} "
            f"then substr('123456789X0', 11 - ({total}) % 11, 1) end")


def gb32100_check_char(s: str) -> str:
    total = " + ".join(f"(instr('{_USCC_ALPHABET}', upper(substr({s}, {i + 1}, 1))) - 1) * {w}"
                       for i, w in enumerate(_GB32100_WEIGHTS))
    return (f"case when {full_match(f'upper({s})', _USCC_CHARS + '{17}')} "
            f"then substr('{_USCC_ALPHABET}', (31 - ({total}) % 31) % 31 + 1, 1) end")


def gb32100_problem(v: str) -> str:
    region = f"substr({v}, 3, 6)"
    shape = f"[1-9ANY]{_USCC_CHARS}[0-9]{{6}}{_USCC_CHARS}{{10}}"
    return (f"case when {v} is null then null "
            f"when not {full_match(f'upper({v})', shape)} then 'uscc_malformed' "
            f"when ({gb32100_check_char(f'substr({v}, 1, 17)')}) <> upper(substr({v}, 18, 1)) "
            "then 'uscc_bad_check_character' "
            f"when ({gb11714_check_char(f'substr({v}, 9, 8)')}) <> upper(substr({v}, 17, 1)) "
            "then 'uscc_bad_org_code_check' "
            f"when {region} <> '100000' "
            f"and not {_exists(f'reference.gbt2260_history h where h.code = {region}')} "
            f"and not {_exists(f'reference.gbt2260_current c where c.code = {region}')} "
            "then 'uscc_unknown_region' end")


def uscc_region_agrees(u: str, d: str) -> str:
    return (f"case when {u} is null or {d} is null or length({u}) < 8 then null "
            f"when substr({u}, 3, 6) = {d} or substr({u}, 3, 6) = '100000' then true "
            f"when substr({u}, 7, 2) = '00' and substr({u}, 5, 2) = '00' then startswith({d}, substr({u}, 3, 2)) "
            f"when substr({u}, 7, 2) = '00' then startswith({d}, substr({u}, 3, 4)) "
            "else false end")


def gbt2260_problem(v: str, level: str | None) -> str:
    """``level`` is a validated level name (province | prefecture | county) or None."""
    lvl = (f"when not {_exists(f'reference.gbt2260_current c where c.code = {v} and c.level = {spark_literal(level)}')} "
           "then 'division_wrong_level' " if level else "")
    return (f"case when {v} is null then null "
            f"when not {full_match(v, '[0-9]{6}')} then 'division_malformed' "
            f"when {_exists(f'reference.nbs_statistical_codes n where n.code = {v}')} "
            "then 'division_nbs_statistical_code' "
            f"when not {_exists(f'reference.gbt2260_current c where c.code = {v}')} then 'division_not_in_use' "
            f"{lvl}end")


def mod37_36_check_char(s: str) -> str:
    values = (f"transform(filter(split(upper({s}), ''), c -> c <> ''), "
              "c -> ascii(c) - case when c <= '9' then 48 else 55 end)")
    folded = (f"aggregate({values}, 36, "
              "(p, x) -> (case when (p + x) % 36 = 0 then 36 else (p + x) % 36 end) * 2 % 37)")
    return (f"case when {s} = '' then '1' "
            f"when {full_match(f'upper({s})', '[0-9A-Z]+')} "
            f"then substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ', (37 - {folded}) % 36 + 1, 1) end")


def gbt36904_problem(v: str) -> str:
    shape = (r"1\.2\.156\.3005\.2\." + _USCC_CHARS + "{18}[0-9]{3}\\.(" + _USCC_CHARS + r"{18}|[0-9]{6})"
             r"\.[0-9A-Z]{1,40}\.[0-9]{3}\.[0-9A-Z]")
    middle = f"replace(substr(upper({v}), 16, length({v}) - 17), '.', '')"
    return (f"case when {v} is null then null "
            f"when not {full_match(f'upper({v})', shape)} then 'ecert_malformed' "
            f"when ({mod37_36_check_char(middle)}) <> upper(right({v}, 1)) then 'ecert_bad_check_character' end")


def gbt4754_problem(v: str) -> str:
    return (f"case when {v} is null then null "
            f"when not {_exists(f'reference.gbt4754_classes c where c.code = {v}')} then 'industry_unknown' end")


#: validator name -> its Spark twin (value, field definition) -> SQL of the problem code
PROBLEMS = {
    "gb11643": lambda v, f: gb11643_problem(v),
    "gb32100": lambda v, f: gb32100_problem(v),
    "gbt2260": lambda v, f: gbt2260_problem(v, f.division_level),
    "gbt36904": lambda v, f: gbt36904_problem(v),
    "gbt4754": lambda v, f: gbt4754_problem(v),
}


# --------------------------------------------------------------------------------------------
# the mapping steps' building blocks

#: the characters TRIM_CHARS names (space, tab, newline, carriage return, ideographic space, no-break space)
TRIM_SET = " \t\n\r\u3000\u00a0"


def trim(expr: str) -> str:
    """DuckDB's ``trim(expr, TRIM_CHARS)``."""
    return f"trim(BOTH {spark_literal(TRIM_SET)} FROM {expr})"


def each(expr: str, shape: str, fn: Any) -> str:
    """``fn`` applied to a value, or to each element of a list (FieldSql.each)."""
    return fn(expr) if shape == "s" else f"transform({expr}, x -> {fn('x')})"


def split(expr: str, separators: list[str]) -> str:
    """The list of the non-blank, trimmed pieces of ``expr`` between any of ``separators``
    (literal text: DuckDB's string_split splits on text, Spark's split on a regex, so each
    separator is quoted as a regex)."""
    pattern = "|".join(re.escape(s) for s in separators)
    pieces = f"split({expr}, {spark_literal(pattern)})"
    return f"filter(transform({pieces}, x -> nullif({trim('x')}, '')), x -> x is not null)"


#: strptime's date directives as DuckDB reads them: greedily up to so many digits, never giving a
#: digit back (possessive quantifiers: '202011' is no %Y%m%d date, '2020115' is 2020-11-05)
_STRPTIME = {"%Y": ("y", "([0-9]{1,4}+)"), "%m": ("m", "([0-9]{1,2}+)"), "%-m": ("m", "([0-9]{1,2}+)"),
             "%d": ("d", "([0-9]{1,2}+)"), "%-d": ("d", "([0-9]{1,2}+)")}


def date_regex(fmt: str) -> tuple[str, dict[str, int]]:
    """A strptime date format as a Java regex (white space around the value allowed, as DuckDB
    skips it) and the group of year, month and day."""
    body, groups = [], {}
    for token in (t for t in re.split(r"(%-?[A-Za-z%])", fmt) if t):
        if token.startswith("%"):
            if token not in _STRPTIME or _STRPTIME[token][0] in groups:
                raise NotImplementedError(f"strptime directive {token!r} in {fmt!r} has no Spark twin yet")
            part, regex = _STRPTIME[token]
            groups[part] = len(groups) + 1
            body.append(regex)
        else:
            body.append(re.escape(token))
    if set(groups) != {"y", "m", "d"}:
        raise NotImplementedError(f"strptime format {fmt!r} is not a full date")
    return "^\\s*" + "".join(body) + "\\s*\\z", groups


def _strptime_date(expr: str, fmt: str) -> str:
    regex, groups = date_regex(fmt)
    lit = spark_literal(regex)
    y, m, d = (f"cast(regexp_extract({expr}, {lit}, {groups[p]}) as int)" for p in ("y", "m", "d"))
    return f"case when {expr} rlike {lit} then make_date({y}, {m}, {d}) end"


#: the zones the Spark twin reads epochs in: fixed offsets from UTC in seconds (China has kept no
#: daylight saving since 1991, so its date is plain arithmetic whatever the session's time zone)
EPOCH_OFFSETS = {"Asia/Shanghai": 28800, "Asia/Chongqing": 28800, "PRC": 28800, "UTC": 0}
#: epoch form -> (digits accepted, units per second)
EPOCHS = {"epoch_s": ("[0-9]{9,10}", 1), "epoch_ms": ("[0-9]{10,13}", 1000)}


def parse_date(expr: str, formats: list[str], tz: str = "Asia/Shanghai") -> str:
    """The date of ``expr`` in the first format it matches; ``epoch_s``/``epoch_ms`` read seconds or
    milliseconds since 1970 as a date in ``tz`` (a fixed-offset zone, EPOCH_OFFSETS: plain
    arithmetic, whatever the session's time zone)."""
    parts = [_strptime_date(expr, f) for f in formats if f not in EPOCHS]
    for form in (f for f in formats if f in EPOCHS):
        if tz not in EPOCH_OFFSETS:
            raise ValueError(f"parse_date on Spark reads epochs in {', '.join(EPOCH_OFFSETS)} only, not {tz!r}")
        digits, per_second = EPOCHS[form]
        offset, per_day = EPOCH_OFFSETS[tz] * per_second, 86400 * per_second
        parts.append(f"case when {full_match(expr, digits)} then "
                     f"date_from_unix_date(cast(floor((cast({expr} as bigint) + {offset}) / {per_day}) as int)) end")
    return parts[0] if len(parts) == 1 else f"coalesce({', '.join(parts)})"
