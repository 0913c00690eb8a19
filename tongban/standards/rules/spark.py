"""Spark SQL twins of the DuckDB macros in macros/validators.sql (issue 19): the same checks, the
same problem codes, written as inline Spark SQL expressions.

Spark has no SQL macros (``create macro``), so where DuckDB calls ``gb11643_problem(v)`` from a
macro created on-run-start, the Spark dialect inlines the whole expression; ``v`` must therefore be
a column reference (the generator passes quoted identifiers), not an expression with side effects.
The reference data are the same ``reference.*`` tables (a Spark database of that name).

Spark differs from DuckDB in ways these twins take care of:

* string literals treat ``\\`` as an escape character and concatenate adjacent literals
  (``'a''b'`` is ``'ab'``, not ``a'b``): every literal goes through :func:`spark_literal`;
* ``regexp_full_match`` does not exist: ``rlike`` with the pattern anchored (Java regex; the
  patterns here are the RE2 subset both read alike);
* ``EXISTS`` subqueries are allowed in filters only: a correlated ``count(*)`` scalar subquery
  says the same in a select list;
* date parsing needs ``spark.sql.legacy.timeParserPolicy=CORRECTED`` (an impossible date such as
  19490230 is then null, as DuckDB's ``try_strptime`` makes it, instead of an upgrade error):
  :data:`SESSION_CONF` is what a Spark session running tongban's SQL is configured with.
"""

from __future__ import annotations

#: the Spark settings tongban's generated SQL relies on (dbt-spark: ``server_side_parameters``)
SESSION_CONF = {
    "spark.sql.legacy.timeParserPolicy": "CORRECTED",
    "spark.sql.ansi.enabled": "false",
    "spark.sql.session.timeZone": "Asia/Shanghai",
}

_ESCAPES = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0"}


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


def full_match(expr: str, pattern: str) -> str:
    """DuckDB's ``regexp_full_match(expr, pattern)`` (null for a null ``expr``)."""
    return f"({expr} rlike {spark_literal('^(?:' + pattern + ')$')})"


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
