"""The mapping steps, a catalogue in the same style as the rules: each step kind is one class
with its argument's YAML schema and check, its SQL (per dialect), its words for the dictionary,
what it takes and gives (for the lint) and the lint's own checks.

A mapping field's steps run in order over the delivered text; a *terminal* step (crosswalk,
match_code, parse_date, parse_amount, email, phone) must come last and makes the field's value;
``constant`` must come first. This module holds the base, the compile state and the steps up to
``split``; tongban.standards.rules.param_steps holds the rest (registration order is the order
the schema and messages list them: the steps without argument, then those with one).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from tongban.common.sqlquote import quote_literal
from tongban.standards.rules import spark, spark_parts
from tongban.standards.rules.base import Catalogue
from tongban.standards.rules.sqlparts import (
    EMAIL_RE,
    PHONE_FIXED_RE,
    PHONE_MOBILE_RE,
    TRIM_CHARS,
    quote_source_column,
    trim_sql,
    trimmed_column,
)

STEPS: Catalogue[StepKind] = Catalogue("step")


@dataclass
class FieldSql:
    """One mapping field's SQL while its steps compile: ``shape`` is "s" (one value) or "l" (a
    list); ``checks`` collects (condition, reason, blocking) triples."""

    std: Any
    mapping: Any
    fdef: Any
    fm: Any
    null_values: list[str]
    pretrimmed: bool
    hw: Callable[[str], str]
    initial: str
    shape: str = "s"
    checks: list[tuple[str, str, bool]] = field(default_factory=list)
    dialect: str = "duckdb"

    def raw_trimmed(self, column: str) -> str:
        if self.dialect == "spark":
            if self.pretrimmed:
                return f"src.{spark_parts.trimmed_column(column)}"
            return spark.trim(f"src.{spark_parts.source_column(column)}")
        if self.pretrimmed:
            return f"src.{trimmed_column(column)}"
        return f"trim(src.{quote_source_column(column)}, {TRIM_CHARS})"

    def pretrimmed_value(self, expr: str) -> str | None:
        """Where ``expr`` is the field's delivered column as read (the staging model trimmed it
        once already): that trimmed column, empty or a null value made null, read half-width."""
        if not (self.pretrimmed and self.fm.source is not None and expr == self.initial):
            return None
        trimmed = self.raw_trimmed(self.fm.source)
        lit = spark.spark_literal if self.dialect == "spark" else quote_literal
        literals = ", ".join(lit(v) for v in dict.fromkeys([*self.null_values, ""]))
        return f"case when {trimmed} in ({literals}) then null else {self.hw(trimmed)} end"

    def each(self, e: str, fn: Callable[[str], str]) -> str:
        """``fn`` applied to a value, or to each element of a list."""
        return fn(e) if self.shape == "s" else f"list_transform({e}, lambda x: {fn('x')})"

    @property
    def code_list(self) -> Any:
        return self.std.code_lists.get(self.fdef.code_list) if self.fdef.code_list else None

    @property
    def has_unknown(self) -> bool:
        return self.code_list is not None and "unknown" in self.code_list.values

    @property
    def blocking_invalid(self) -> bool:
        return self.fdef.on_invalid == "quarantine"


class StepKind:
    """One step of the closed vocabulary. ``takes``/``gives``: "s" a value, "l" a list, "*" either,
    "=" what it took, "-" nothing (a first step), "date"/"number" a typed value."""

    name: ClassVar[str]
    takes: ClassVar[str] = "*"
    gives: ClassVar[str] = "="
    terminal: ClassVar[bool] = False  # must be the last step; makes the field's value
    first: ClassVar[bool] = False  # must be the first step
    takes_arg: ClassVar[bool] = False
    reads_json: ClassVar[bool] = False  # reads JSON text itself (a nested object is then no error)
    half_width: ClassVar[bool] = False  # its field's delivered value is read half-width first
    lookup_cte: ClassVar[str] = ""  # the staging model's lookup CTE prefix (code steps)
    doc: ClassVar[str]  # for the JSON Schema (editors show it)
    words: ClassVar[tuple[str, str]]  # for the dictionary (zh, en)

    def check_arg(self, arg: Any) -> None:
        if arg is not None:
            raise ValueError(f"step {self.name!r} takes no argument")

    def arg_schema(self) -> dict[str, Any]:
        raise ValueError(f"step {self.name!r} takes no argument")

    def words_arg(self, arg: Any) -> str:
        """The step as the dictionary writes it, e.g. ``crosswalk(domain)``."""
        return self.name if arg is None else f"{self.name}({arg})"

    def lint(self, std: Any, m: Any, fdef: Any, arg: Any) -> list[tuple[str, str]]:
        """(message, hint) for each way this step does not fit its field."""
        return []

    def columns(self, arg: Any) -> list[str]:
        """Delivery columns the step reads besides the field's source."""
        return []


def _string_list(arg: Any) -> bool:
    return isinstance(arg, list) and bool(arg) and all(isinstance(a, str) and a for a in arg)


class StringListStep(StepKind):
    """A step whose argument is a non-empty list of strings."""

    takes_arg = True

    def check_arg(self, arg: Any) -> None:
        if not _string_list(arg):
            raise ValueError(f"step {self.name!r} needs a list of strings, e.g. {{{self.name}: [',']}}")

    def arg_schema(self) -> dict[str, Any]:
        return {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}


@STEPS.register
class Trim(StepKind):
    name = "trim"
    doc = "strip surrounding whitespace"
    words = ("去除首尾空白", "strip surrounding whitespace")

    def sql_duckdb(self, c: FieldSql, expr: str, arg: Any) -> str:
        # the staging model trimmed the column once already
        pretrimmed = c.pretrimmed_value(expr)
        return pretrimmed or c.each(expr, lambda e: f"nullif({trim_sql(e)}, '')")

    def sql_spark(self, c: FieldSql, expr: str, arg: Any) -> str:
        pretrimmed = c.pretrimmed_value(expr)
        return pretrimmed or spark.each(expr, c.shape, lambda e: f"nullif({spark.trim(e)}, '')")


@STEPS.register
class Lower(StepKind):
    name = "lower"
    doc = "lower-case"
    words = ("转为小写", "lower-case")

    def sql_duckdb(self, c: FieldSql, expr: str, arg: Any) -> str:
        return c.each(expr, lambda e: f"lower({e})")

    def sql_spark(self, c: FieldSql, expr: str, arg: Any) -> str:
        return spark.each(expr, c.shape, lambda e: f"lower({e})")


@STEPS.register
class Upper(StepKind):
    name = "upper"
    doc = "upper-case"
    words = ("转为大写", "upper-case")

    def sql_duckdb(self, c: FieldSql, expr: str, arg: Any) -> str:
        return c.each(expr, lambda e: f"upper({e})")

    def sql_spark(self, c: FieldSql, expr: str, arg: Any) -> str:
        return spark.each(expr, c.shape, lambda e: f"upper({e})")


@STEPS.register
class ParseList(StepKind):
    name = "parse_list"
    takes, gives = "s", "l"
    reads_json = True
    doc = "parse a list written in the value into a list"
    words = ("解析 JSON 列表（或 Python 列表文本）", "parse a JSON list (or the text of a Python list)")

    def sql_duckdb(self, c: FieldSql, expr: str, arg: Any) -> str:
        # JSON lists, and the text of Python lists ("['api']") some crawlers wrote.
        normalised = f"replace({expr}, '''', '\"')"
        parsed = f"from_json({normalised}, '[\"VARCHAR\"]')"
        c.checks.append((f"{expr} is not null and not coalesce(json_valid({normalised}) "
                         f"and starts_with(trim({normalised}), '['), false)", "invalid_list", True))
        c.shape = "l"
        return (f"case when json_valid({normalised}) and starts_with(trim({normalised}), '[') "
                f"then list_filter({parsed}, lambda x: nullif(trim(x), '') is not null) end")

    def sql_spark(self, c: FieldSql, expr: str, arg: Any) -> str:
        value, invalid = spark_parts.parse_list(expr)
        c.checks.append((invalid, "invalid_list", True))
        c.shape = "l"
        return value


@STEPS.register
class ToList(StepKind):
    name = "to_list"
    takes, gives = "s", "l"
    doc = "wrap a single value in a list"
    words = ("单个取值转为列表", "wrap a single value in a list")

    def sql_duckdb(self, c: FieldSql, expr: str, arg: Any) -> str:
        c.shape = "l"
        return f"case when {expr} is null then null else [{expr}] end"

    def sql_spark(self, c: FieldSql, expr: str, arg: Any) -> str:
        c.shape = "l"
        return f"case when {expr} is null then null else array({expr}) end"


@STEPS.register
class First(StepKind):
    name = "first"
    takes, gives = "l", "s"
    doc = "the first item of a list"
    words = ("取列表第一项", "take the first item of a list")

    def sql_duckdb(self, c: FieldSql, expr: str, arg: Any) -> str:
        c.shape = "s"
        return f"{expr}[1]"

    def sql_spark(self, c: FieldSql, expr: str, arg: Any) -> str:
        c.shape = "s"
        return f"try_element_at({expr}, 1)"  # null for an empty list, as DuckDB's [1]


class FormatStep(StepKind):
    """A step that normalises a value of a field with the same ``format``."""

    takes, gives = "s", "s"
    terminal = True

    def lint(self, std: Any, m: Any, fdef: Any, arg: Any) -> list[tuple[str, str]]:
        if fdef.format != self.name:
            return [(f"step {self.name!r} on field {fdef.name!r}, whose format is {fdef.format}", "")]
        return []


@STEPS.register
class Email(FormatStep):
    name = "email"
    doc = "normalise an e-mail address (last step)"
    words = ("校验并规范化电子邮箱", "check and normalise an e-mail address")

    def terminal_duckdb(self, c: FieldSql, b: str, arg: Any) -> str:
        lowered = f"lower({b})"
        ok = f"regexp_full_match({lowered}, {quote_literal(EMAIL_RE)})"
        c.checks.append((f"contains({b}, '@') and not {ok}", "invalid_email", c.blocking_invalid))
        return f"case when {ok} then {lowered} end"

    def terminal_spark(self, c: FieldSql, b: str, arg: Any) -> str:
        lowered = f"lower({b})"
        ok = spark.full_match(lowered, EMAIL_RE[1:-1])  # EMAIL_RE is anchored already
        c.checks.append((f"instr({b}, '@') > 0 and not {ok}", "invalid_email", c.blocking_invalid))
        return f"case when {ok} then {lowered} end"


@STEPS.register
class Phone(FormatStep):
    name = "phone"
    half_width = True
    doc = "normalise a phone number (last step)"
    words = ("提取规范化电话号码", "extract a normalised phone number")

    def terminal_duckdb(self, c: FieldSql, b: str, arg: Any) -> str:
        # full-width digits and brackets (１３８..., （０２１）) were read half-width at the start
        cleaned = f"replace({b}, '—', '-')"
        fixed = f"regexp_extract({cleaned}, {quote_literal(PHONE_FIXED_RE)}, ['area', 'local'])"
        mobile = f"regexp_extract({cleaned}, {quote_literal(PHONE_MOBILE_RE)}, 1)"
        found = f"coalesce(nullif({fixed}.area || '-' || {fixed}.local, '-'), nullif({mobile}, ''))"
        value = f"case when contains({b}, '@') then null else {found} end"
        c.checks.append((f"{b} is not null and not contains({b}, '@') and ({value}) is null",
                         "invalid_phone", c.blocking_invalid))
        return value

    def terminal_spark(self, c: FieldSql, b: str, arg: Any) -> str:
        cleaned = f"replace({b}, '—', '-')"
        fixed, mobile = spark.spark_literal(PHONE_FIXED_RE), spark.spark_literal(PHONE_MOBILE_RE)
        # Spark's regexp_extract gives '' without a match, as DuckDB's does for each named group
        found = (f"coalesce(nullif(regexp_extract({cleaned}, {fixed}, 1) || '-' || "
                 f"regexp_extract({cleaned}, {fixed}, 2), '-'), nullif(regexp_extract({cleaned}, {mobile}, 1), ''))")
        value = f"case when instr({b}, '@') > 0 then null else {found} end"
        c.checks.append((f"{b} is not null and not instr({b}, '@') > 0 and ({value}) is null",
                         "invalid_phone", c.blocking_invalid))
        return value


@STEPS.register
class Split(StringListStep):
    name = "split"
    takes, gives = "s", "l"
    doc = "split text into a list on any of the given separators"
    words = ("按分隔符拆分为列表", "split into a list at the separators")

    def words_arg(self, arg: Any) -> str:
        return f"split({', '.join(json.dumps(v, ensure_ascii=False) for v in arg)})"

    def sql_duckdb(self, c: FieldSql, expr: str, arg: Any) -> str:
        first, rest = arg[0], arg[1:]
        joined = expr
        for sep in rest:
            joined = f"replace({joined}, {quote_literal(sep)}, {quote_literal(first)})"
        c.shape = "l"
        return (f"list_filter(list_transform(string_split({joined}, {quote_literal(first)}), "
                f"lambda x: nullif(trim(x, {TRIM_CHARS}), '')), lambda x: x is not null)")

    def sql_spark(self, c: FieldSql, expr: str, arg: Any) -> str:
        c.shape = "l"
        return spark.split(expr, list(arg))
