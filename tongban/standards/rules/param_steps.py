"""The mapping steps that take an argument (``split`` aside, in tongban.standards.rules.steps):
code lookups, dates, amounts, regular expressions, constants and concatenation."""

from __future__ import annotations

import json
import math
import re
from typing import Any, ClassVar

from tongban.common.sqlquote import quote_literal
from tongban.standards.rules import spark, spark_parts
from tongban.standards.rules.base import IDENT, suggest
from tongban.standards.rules.sqlparts import (
    DUCKDB_LISTS,
    Lists,
    TRIM_CHARS,
    amount_places_fit_sql,
    nulls,
    nulls_trimmed,
    quote_source_column,
    trimmed_column,
)
from tongban.standards.rules.steps import STEPS, FieldSql, StepKind, StringListStep, _string_list

#: units parse_amount converts to yuan (the standard's unit for money)
AMOUNT_UNITS = {"元": 1, "万元": 10_000, "亿元": 100_000_000}


class CodeStep(StepKind):
    """A terminal lookup of the field's code list: the value (or each item of a list) maps to a code."""

    terminal = True
    takes_arg = True
    #: the lookup records its version in the staged rows' crosswalk_version
    versioned: ClassVar[bool] = False

    def lookup_sql(self, m: Any, code_list: str) -> str:
        """The staging model's CTE ``<lookup_cte>_<code_list>`` (macros/lookups.sql)."""
        raise NotImplementedError

    def check_arg(self, arg: Any) -> None:
        if not (isinstance(arg, str) and re.match(IDENT, arg)):
            raise ValueError(f"step {self.name!r} needs a code list name, e.g. {{{self.name}: domain}}")

    def arg_schema(self) -> dict[str, Any]:
        return {"type": "string", "pattern": IDENT, "description": "a code list name"}

    def lint(self, std: Any, m: Any, fdef: Any, arg: Any) -> list[tuple[str, str]]:
        verb = {"crosswalk": "be crosswalked", "match_code": "match codes"}[self.name]
        if fdef.code_list is None:
            return [(f"field {fdef.name!r} has no code list, so it cannot {verb}", "")]
        if arg != fdef.code_list:
            return [(f"field {fdef.name!r} uses code list {fdef.code_list!r}, not {arg!r}",
                     f"write {{{self.name}: {fdef.code_list}}}")]
        return []

    def pending(self, arg: str) -> str | None:
        return None

    def terminal_duckdb(self, c: FieldSql, b: str, arg: Any) -> str:
        return self._terminal(c, b, arg, DUCKDB_LISTS)

    def terminal_spark(self, c: FieldSql, b: str, arg: Any) -> str:
        return self._terminal(c, b, arg, spark_parts.SPARK_LISTS)

    def _terminal(self, c: FieldSql, b: str, arg: Any, ops: Lists) -> str:
        lookup = f"{self.lookup_cte}_{arg}.lookup"
        blocking = c.fdef.on_unmapped == "quarantine"
        fallback = "'unknown'" if c.has_unknown else "null"
        get = ops.get
        # A proposed crosswalk entry (awaiting review) holds back a blocking field's row
        # (mapping_not_approved); a non-blocking field uses it and notes it.
        pending = self.pending(arg)
        if c.shape == "s":
            mapped = get(lookup, b)
            if pending:
                held = get(pending, b)
                c.checks.append((f"{b} is not null and {mapped} is null and {held} is null", "unmapped_code", blocking))
                c.checks.append((f"{b} is not null and {mapped} is null and {held} is not null",
                                 "mapping_not_approved", blocking))
                mapped = mapped if blocking else f"coalesce({mapped}, {held})"
            else:
                c.checks.append((f"{b} is not null and {mapped} is null", "unmapped_code", blocking))
            return f"case when {b} is null then {fallback} else coalesce({mapped}, {fallback if not blocking else 'null'}) end"

        def one(x: str) -> str:
            if pending and not blocking:
                return f"coalesce({get(lookup, x)}, {get(pending, x)})"
            return get(lookup, x)
        if pending:
            c.checks.append((ops.any(b, f"{get(lookup, 'x')} is null and {get(pending, 'x')} is null"),
                             "unmapped_code", blocking))
            c.checks.append((ops.any(b, f"{get(lookup, 'x')} is null and {get(pending, 'x')} is not null"),
                             "mapping_not_approved", blocking))
        else:
            c.checks.append((ops.any(b, f"{one('x')} is null"), "unmapped_code", blocking))
        return ops.transform(b, f"coalesce({one('x')}, {fallback})")


@STEPS.register
class Crosswalk(CodeStep):
    name = "crosswalk"
    lookup_cte = "cw"
    versioned = True
    doc = "map source values to codes through standards/mappings/<source>/crosswalks/<code list>.csv (last step)"
    words = ("按本来源的代码对照表映射为标准代码", "map through this source's crosswalk to the standard's codes")

    def pending(self, arg: str) -> str | None:
        return f"cw_{arg}.pending"

    def lookup_sql(self, m: Any, code_list: str) -> str:
        return f"{{{{ tongban_crosswalk_lookup('{m.source_id}', '{code_list}') }}}}"

    def lookup_sql_spark(self, m: Any, code_list: str) -> str:
        return spark_parts.crosswalk_lookup(m.source_id, code_list)

    def lint(self, std: Any, m: Any, fdef: Any, arg: Any) -> list[tuple[str, str]]:
        found = super().lint(std, m, fdef, arg)
        if not found and (m.source_id, arg) not in std.crosswalks:
            found.append((f"no crosswalk file for {arg!r}",
                          f"create standards/mappings/{m.source_id}/crosswalks/{arg}.csv"))
        return found


@STEPS.register
class MatchCode(CodeStep):
    name = "match_code"
    lookup_cte = "cl"
    doc = "accept the standard's codes (or their Chinese labels) of the code list as they are (last step)"
    words = ("取值已是标准代码或其中文名称", "the value already is a standard code or its Chinese label")

    def lookup_sql(self, m: Any, code_list: str) -> str:
        return f"{{{{ tongban_code_lookup('{code_list}') }}}}"

    def lookup_sql_spark(self, m: Any, code_list: str) -> str:
        return spark_parts.code_lookup(code_list)


#: the time zone an epoch value's date is read in when the mapping names none (deliveries are China time)
DEFAULT_TZ = "Asia/Shanghai"
#: epoch forms parse_date reads: name -> (digits accepted, the SQL of seconds since the epoch)
EPOCH_FORMS = {"epoch_s": ("[0-9]{9,10}", "{b}::bigint"), "epoch_ms": ("[0-9]{10,13}", "{b}::bigint / 1000.0")}


def date_arg(arg: Any) -> tuple[list[str], str]:
    """(formats, time zone) of a parse_date argument: a list of formats, or a map
    ``{formats: [...], tz: <IANA zone>}``; the zone only matters for epoch_s / epoch_ms."""
    if isinstance(arg, dict):
        return list(arg.get("formats") or []), arg.get("tz") or DEFAULT_TZ
    return list(arg), DEFAULT_TZ


@STEPS.register
class ParseDate(StringListStep):
    name = "parse_date"
    takes, gives = "s", "date"
    terminal = True
    doc = ("parse a date with the first matching strptime format, or epoch_s / epoch_ms (a timestamp whose "
           f"date is taken in tz, default {DEFAULT_TZ}) (last step); a list, or {{formats: [...], tz: ...}}")
    words = ("按所列格式解析日期（epoch_s/epoch_ms 为秒/毫秒时间戳，按时区取日期，默认 Asia/Shanghai）",
             "parse a date in one of the formats (epoch_s/epoch_ms: a timestamp in seconds/milliseconds, "
             "its date taken in the time zone, default Asia/Shanghai)")

    def check_arg(self, arg: Any) -> None:
        if isinstance(arg, dict):
            if set(arg) - {"formats", "tz"} or not _string_list(arg.get("formats")):
                raise ValueError("step 'parse_date' takes a list of formats or {formats: [...], tz: <time zone>}")
            tz = arg.get("tz", DEFAULT_TZ)
            if not isinstance(tz, str) or tz not in _time_zones():
                raise ValueError(f"step 'parse_date': unknown time zone {tz!r} (an IANA name such as Asia/Shanghai)")
            return
        super().check_arg(arg)

    def arg_schema(self) -> dict[str, Any]:
        formats = super().arg_schema()
        return {"oneOf": [formats, {"type": "object", "additionalProperties": False, "required": ["formats"],
                                    "properties": {"formats": formats, "tz": {"type": "string", "minLength": 1}}}]}

    def words_arg(self, arg: Any) -> str:
        formats, tz = date_arg(arg)
        zone = f"; {tz}" if isinstance(arg, dict) and any(f in EPOCH_FORMS for f in formats) else ""
        return f"parse_date({' | '.join(formats)}{zone})"

    def lint(self, std: Any, m: Any, fdef: Any, arg: Any) -> list[tuple[str, str]]:
        return [] if fdef.type == "date" else [(f"parse_date on field {fdef.name!r} of type {fdef.type}", "")]

    def terminal_duckdb(self, c: FieldSql, b: str, arg: Any) -> str:
        formats, tz = date_arg(arg)
        parts = []
        strp = [f for f in formats if f not in EPOCH_FORMS]
        if strp:
            fmt_list = "[" + ", ".join(quote_literal(f) for f in strp) + "]"
            parts.append(f"try_strptime({b}, {fmt_list})::date")
        for form in (f for f in formats if f in EPOCH_FORMS):
            digits, seconds = EPOCH_FORMS[form]
            # the instant's calendar date where the delivery was made (tz), not in UTC
            parts.append(f"case when regexp_full_match({b}, '{digits}') then "
                         f"timezone({quote_literal(tz)}, to_timestamp({seconds.format(b=b)}))::date end")
        value = parts[0] if len(parts) == 1 else f"coalesce({', '.join(parts)})"
        c.checks.append((f"{b} is not null and {value} is null", "invalid_date", c.blocking_invalid))
        return value

    def terminal_spark(self, c: FieldSql, b: str, arg: Any) -> str:
        value = spark.parse_date(b, *date_arg(arg))
        c.checks.append((f"{b} is not null and {value} is null", "invalid_date", c.blocking_invalid))
        return value


def _time_zones() -> set[str]:
    import zoneinfo  # lazy: reads the tz database only when a mapping names a zone

    return zoneinfo.available_timezones() | {"UTC"}


@STEPS.register
class ParseInteger(StepKind):
    name = "parse_integer"
    takes, gives = "s", "number"
    terminal = True
    doc = "parse a whole number (thousands separators allowed) (last step)"
    words = ("解析为整数（可含千位分隔符）", "parse a whole number (thousands separators allowed)")

    def lint(self, std: Any, m: Any, fdef: Any, arg: Any) -> list[tuple[str, str]]:
        return [] if fdef.type == "bigint" else [(f"parse_integer on field {fdef.name!r} of type {fdef.type}", "")]

    def terminal_duckdb(self, c: FieldSql, b: str, arg: Any) -> str:
        text = f"replace(replace({b}, ',', ''), '，', '')"
        value = f"case when regexp_full_match({text}, '[+-]?[0-9]{{1,18}}') then {text}::bigint end"
        c.checks.append((f"{b} is not null and ({value}) is null", "invalid_number", c.blocking_invalid))
        return value

    def terminal_spark(self, c: FieldSql, b: str, arg: Any) -> str:
        value, invalid = spark_parts.parse_integer(b)
        c.checks.append((invalid, "invalid_number", c.blocking_invalid))
        return value


@STEPS.register
class ParseAmount(StepKind):
    name = "parse_amount"
    takes, gives = "s", "number"
    terminal = True
    takes_arg = True
    doc = "parse an amount given in this unit into yuan (last step)"
    words = ("按交付单位换算为元", "convert the delivery's unit to yuan")

    def check_arg(self, arg: Any) -> None:
        if arg not in AMOUNT_UNITS:
            raise ValueError(f"step 'parse_amount' needs the delivery's unit: one of {', '.join(AMOUNT_UNITS)}")

    def arg_schema(self) -> dict[str, Any]:
        return {"enum": list(AMOUNT_UNITS), "description": "the delivery's unit"}

    def words_arg(self, arg: Any) -> str:
        return f"parse_amount({arg} → 元)"

    def lint(self, std: Any, m: Any, fdef: Any, arg: Any) -> list[tuple[str, str]]:
        if fdef.type not in ("decimal(20,2)", "double", "bigint"):
            return [(f"parse_amount on field {fdef.name!r} of type {fdef.type}", "")]
        return []

    def terminal_duckdb(self, c: FieldSql, b: str, arg: Any) -> str:
        factor = AMOUNT_UNITS[arg]
        # the standard's scale is the fen (decimal(20,2) yuan): in 万元 that is 6 places, in 亿元 10
        places = 2 + round(math.log10(factor))
        text = f"replace(replace({b}, ',', ''), '，', '')"
        number = f"try_cast({text} as decimal(38, {max(6, places)}))"
        fits = f"abs({number}::double) * {factor} < 1e17"  # decimal(20,2), checked before multiplying
        # more places than a fen are refused, not rounded away by a cast
        return self._value(c, b, factor, number, fits, amount_places_fit_sql(text, places))

    def terminal_spark(self, c: FieldSql, b: str, arg: Any) -> str:
        factor = AMOUNT_UNITS[arg]
        places = 2 + round(math.log10(factor))
        text = f"replace(replace({b}, ',', ''), '，', '')"
        # null when no number (ANSI off); DuckDB also reads one '_' between digits as a separator
        digits = f"regexp_replace({text}, '(?<=[0-9])_(?=[0-9])', '')"
        number = f"cast({digits} as decimal(38, {max(6, places)}))"
        fits = f"abs(cast({number} as double)) * {factor} < 1e17"
        return self._value(c, b, factor, number, fits, spark_parts.amount_places_fit(text, places))

    def _value(self, c: FieldSql, b: str, factor: int, number: str, fits: str, exact: str) -> str:
        scaled = number if factor == 1 else f"({number} * {factor})"
        value = f"case when {fits} and {exact} then {scaled} end"
        blocking = c.blocking_invalid
        c.checks.append((f"{b} is not null and {number} is null", "invalid_number", blocking))
        c.checks.append((f"{number} is not null and not ({fits})", "out_of_range", blocking))
        # a number that fits but has no value has too many places (read from the computed value)
        c.checks.append((f"{number} is not null and {fits} and ({value}) is null", "too_precise", blocking))
        return value


class StringStep(StepKind):
    takes_arg = True

    def check_arg(self, arg: Any) -> None:
        if not isinstance(arg, str):
            raise ValueError(f"step {self.name!r} needs a string argument")

    def arg_schema(self) -> dict[str, Any]:
        return {"type": "string"}

    def words_arg(self, arg: Any) -> str:
        return f"{self.name}({json.dumps(arg, ensure_ascii=False)})"


@STEPS.register
class RemoveRegex(StringStep):
    name = "remove_regex"
    takes, gives = "s", "s"
    doc = "remove every match of a regular expression"
    words = ("删除与正则表达式匹配的部分", "remove what the regular expression matches")

    def check_arg(self, arg: Any) -> None:
        super().check_arg(arg)
        try:
            re.compile(arg)
        except re.error as exc:
            raise ValueError(f"remove_regex: not a valid regular expression: {exc}") from exc

    def sql_duckdb(self, c: FieldSql, expr: str, arg: Any) -> str:
        return f"nullif(trim(regexp_replace({expr}, {quote_literal(arg)}, ''), {TRIM_CHARS}), '')"

    def sql_spark(self, c: FieldSql, expr: str, arg: Any) -> str:
        # DuckDB's regexp_replace without 'g' removes the first match only; Spark's removes all:
        # keep what precedes the first match instead
        first = spark.spark_literal(f"(?s)^(.*?)(?:{spark.java_regex(arg)})")
        return f"nullif({spark.trim(f'regexp_replace({expr}, {first}, {spark.spark_literal(chr(36) + chr(49))})')}, '')"


@STEPS.register
class Constant(StringStep):
    name = "constant"
    takes, gives = "-", "s"
    first = True
    doc = "a fixed value instead of a column (first step)"
    words = ("固定取值", "a constant value")

    def sql_duckdb(self, c: FieldSql, expr: str, arg: Any) -> str:
        return quote_literal(arg)

    def sql_spark(self, c: FieldSql, expr: str, arg: Any) -> str:
        return spark.spark_literal(arg)


@STEPS.register
class Concat(StepKind):
    name = "concat"
    takes, gives = "s", "s"
    takes_arg = True
    doc = "append the values of other delivery columns, separated by a space"
    words = ("追加其他交付列的取值（以空格分隔）", "append other delivery columns' values, separated by a space")

    def check_arg(self, arg: Any) -> None:
        if not _string_list(arg):
            raise ValueError("step 'concat' needs a list of delivery columns to append, e.g. {concat: [区县, 街道]}")
        for a in arg:
            if any(ord(ch) < 32 for ch in a) or '"' in a:
                raise ValueError("a column name may not contain quotes or control characters")

    def arg_schema(self) -> dict[str, Any]:
        return {"type": "array", "items": {"type": "string", "minLength": 1, "pattern": '^[^"\\x00-\\x1f]+$'},
                "minItems": 1, "description": "delivery columns to append"}

    def columns(self, arg: Any) -> list[str]:
        return list(arg)

    def lint(self, std: Any, m: Any, fdef: Any, arg: Any) -> list[tuple[str, str]]:
        columns = m.column_names
        return [(f"field {fdef.name!r}: concat reads column {col!r}, which the delivery does not declare",
                 suggest(col, columns)) for col in arg if col not in columns]

    def sql_duckdb(self, c: FieldSql, expr: str, arg: Any) -> str:
        # append other delivery columns, space-separated, skipping empty ones
        nv = c.mapping.null_values
        others = ", ".join(nulls_trimmed(f"src.{quote_source_column(col)}", f"src.{trimmed_column(col)}", nv)
                           if c.pretrimmed else nulls(f"src.{quote_source_column(col)}", nv) for col in arg)
        return f"nullif(concat_ws(' ', {expr}, {others}), '')"

    def sql_spark(self, c: FieldSql, expr: str, arg: Any) -> str:
        nv = c.mapping.null_values
        others = ", ".join(spark_parts.nulls_trimmed(f"src.{spark_parts.source_column(col)}", c.raw_trimmed(col), nv)
                           for col in arg)
        return f"nullif(concat_ws(' ', {expr}, {others}), '')"
