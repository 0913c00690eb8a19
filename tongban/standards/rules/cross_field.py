"""The cross-field rules the committee writes (an entity's ``rules:`` list, issue 18): a small closed
vocabulary, each rule with a ``severity`` and a bilingual ``message``.

* ``compare`` — ``expr: "updated_date >= published_date"``: a field against a field or a literal,
  parsed into the fixed grammar ``field op field|literal`` (op one of ``>= > <= < = !=``; a literal
  is a number or a single-quoted string; a date field's literal is an ISO date). Rows where either
  side is null are not judged.
* ``required_if`` — ``field`` must have a value when ``when`` (the same grammar) holds.
* ``at_least_one_of`` — ``fields``: at least one of them has a value.
* ``not_in_future`` — the date ``field`` is not after the run date.
* ``not_before`` — the date ``field`` is not before ``bound`` (a birth date before 1900).

``severity: warn`` records the rule on the row (its ``note_issues``; the row is published, and the
province's feedback and the run record say so); ``severity: quarantine`` holds the row back with
the rule's ``reason``. Nothing of the YAML reaches SQL except a field name through ``quote_ident``
(checked against the entity) and a literal through ``quote_literal`` (on Spark: ``spark_ident`` and
``spark_literal``; each kind's SQL is written once, for either dialect). Adding such a rule is a minor
version of the standard (tongban.standards.versioning_changes); making one stricter (warn →
quarantine) is a major one.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, field_validator

from tongban.standards.rules.base import IDENT, Check, Label
from tongban.standards.rules.fields import date_sql, expectation
from tongban.standards.rules.row import ROW_RULES, RowRule
from tongban.standards.rules.spark_rows import current_date, quoting

Severity = Literal["warn", "quarantine"]
OPS = (">=", "<=", "!=", ">", "<", "=")
_EXPR = re.compile(r"^\s*([a-z][a-z0-9_]{0,62})\s*(>=|<=|!=|>|<|=)\s*(.+?)\s*$")
_NUMBER = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")
#: how DuckDB casts a number's text to the type (half away from zero: '1.5' is 2 as a bigint), so the
#: Spark twin, whose cast truncates, is handed the value DuckDB compares with
_PLACES = {"bigint": Decimal(1), "decimal(20,2)": Decimal("0.01")}
_OP_WORDS = {">=": ("不早于/不小于", "is on or after / at least"), ">": ("晚于/大于", "is after / greater than"),
             "<=": ("不晚于/不大于", "is on or before / at most"), "<": ("早于/小于", "is before / less than"),
             "=": ("等于", "equals"), "!=": ("不等于", "differs from")}


@dataclass(frozen=True)
class Comparison:
    """``left op right``: ``right`` is a field name (``right_is_field``) or a literal's text."""

    left: str
    op: str
    right: str
    right_is_field: bool

    @classmethod
    def parse(cls, text: str) -> Comparison:
        m = _EXPR.match(text)
        if not m:
            raise ValueError(f"{text!r} is not 'field op field' or 'field op literal' (op: {' '.join(OPS)}; "
                             "a literal is a number or a 'quoted' string)")
        left, op, right = m.groups()
        if re.fullmatch(IDENT[1:-1], right):
            return cls(left, op, right, True)
        if _NUMBER.match(right):
            return cls(left, op, right, False)
        if len(right) >= 2 and right[0] == right[-1] == "'" and "'" not in right[1:-1]:
            return cls(left, op, right[1:-1], False)
        raise ValueError(f"{right!r} in {text!r} is neither a field nor a literal (a number or a 'quoted' string)")

    def refs(self) -> list[str]:
        return [self.left, self.right] if self.right_is_field else [self.left]

    def check(self, ent: Any) -> None:
        """A literal must fit the left field's type (a date field's literal is YYYY-MM-DD)."""
        if self.right_is_field:
            return
        kind = ent.field(self.left).type
        if kind == "date":
            try:
                dt.date.fromisoformat(self.right)
            except ValueError:
                raise ValueError(f"{self.left} is a date: compare it with 'YYYY-MM-DD', not {self.right!r}") from None
        elif kind in ("bigint", "double", "decimal(20,2)") and not _NUMBER.match(self.right):
            raise ValueError(f"{self.left} is a number: compare it with a number, not {self.right!r}")
        elif kind not in ("date", "bigint", "double", "decimal(20,2)", "varchar"):
            raise ValueError(f"{self.left} ({kind}) cannot be compared with a literal")

    def right_sql(self, ent: Any, dialect: str = "duckdb") -> str:
        ident, literal = quoting(dialect)
        if self.right_is_field:
            return ident(self.right)
        kind = ent.field(self.left).type
        if kind == "date":
            return date_sql(dt.date.fromisoformat(self.right))
        if kind == "varchar":
            return literal(self.right)
        text = self.right
        if dialect != "duckdb" and kind in _PLACES:
            text = str(Decimal(text).quantize(_PLACES[kind], ROUND_HALF_UP))
        return f"cast({literal(text)} as {kind})"

    def holds_sql(self, ent: Any, dialect: str = "duckdb") -> str:
        """SQL true when both sides have a value and the comparison holds."""
        op = "<>" if self.op == "!=" else self.op
        return f"({quoting(dialect)[0](self.left)} {op} {self.right_sql(ent, dialect)})"

    def known_sql(self, ent: Any, dialect: str = "duckdb") -> str:
        both = [quoting(dialect)[0](r) + " is not null" for r in self.refs()]
        return " and ".join(both)

    def text(self) -> str:
        return f"{self.left} {self.op} {self.right if self.right_is_field else repr(self.right)}"


class CrossFieldRule(RowRule):
    """Base of the committee's cross-field rules: severity, reason, message (zh + en), which every
    kind has (the schema lists them before the kind's own keys)."""

    severity: Severity
    reason: Annotated[str, Field(pattern=IDENT)]
    message: Label
    description: Label | None = None

    added: ClassVar[str] = "minor"

    def checks_duckdb(self, ent: Any) -> list[Check]:
        return self.checks(ent, "duckdb")

    def checks_spark(self, ent: Any) -> list[Check]:
        return self.checks(ent, "spark")

    def checks(self, ent: Any, dialect: str) -> list[Check]:
        cond, field = self.violated(ent, dialect)
        return [Check(cond, self.reason, field, quoting(dialect)[0](field), severity=self.severity)]

    def violated(self, ent: Any, dialect: str) -> tuple[str, str]:
        """(SQL in ``dialect`` true when the row breaks the rule, the field the reason names)."""
        raise NotImplementedError

    def check(self, ent: Any) -> None:
        """Checks against the entity beyond the field names (the entity model calls it)."""

    def gx(self, std: Any, ent: Any) -> list[dict[str, Any]]:
        return []

    def _exp(self, kind: str, **kwargs: Any) -> dict[str, Any]:
        """The rule's expectation: blocking for a quarantine rule (the models held every row that
        breaks it, so it passes unless they failed), a warning for a warn rule (the rows are
        published; the gate reports how many)."""
        exp = expectation(kind, self.severity == "quarantine", f"{self.rule} {self.reason}: {self.message.en}",
                          **kwargs)
        exp["meta"].update({"severity": self.severity, "rule": self.rule, "reason": self.reason})
        return exp

    def severity_words(self) -> tuple[str, str]:
        if self.severity == "warn":
            return "（告警，照常发布）", f" (warning {self.reason}: published, reported)"
        return "（退回）", f" (quarantined: {self.reason})"

    def words(self) -> tuple[str, str]:
        zh, en = self.meaning()
        szh, sen = self.severity_words()
        return f"{zh}{szh} — {self.message.zh}", f"{en}{sen} — {self.message.en}"

    def meaning(self) -> tuple[str, str]:
        raise NotImplementedError


def _comparison(v: str) -> str:
    Comparison.parse(v)
    return v


@ROW_RULES.register
class Compare(CrossFieldRule):
    """``expr``: a field against a field or a literal, e.g. ``updated_date >= published_date``."""

    rule: Literal["compare"]
    expr: str

    @field_validator("expr")
    @classmethod
    def _parses(cls, v: str) -> str:
        return _comparison(v)

    @property
    def comparison(self) -> Comparison:
        return Comparison.parse(self.expr)

    def refs(self) -> list[str]:
        return self.comparison.refs()

    def check(self, ent: Any) -> None:
        self.comparison.check(ent)

    def violated(self, ent: Any, dialect: str) -> tuple[str, str]:
        c = self.comparison
        return f"{c.known_sql(ent, dialect)} and not {c.holds_sql(ent, dialect)}", c.left

    def gx(self, std: Any, ent: Any) -> list[dict[str, Any]]:
        c = self.comparison
        if c.right_is_field:
            a, b = (c.left, c.right) if c.op in (">=", ">") else (c.right, c.left)
            if c.op in (">=", ">", "<=", "<"):
                return [self._exp("expect_column_pair_values_a_to_be_greater_than_b", column_A=a, column_B=b,
                                  or_equal=c.op in (">=", "<="), ignore_row_if="either_value_is_missing")]
            if c.op == "=":
                return [self._exp("expect_column_pair_values_to_be_equal", column_A=c.left, column_B=c.right,
                                  ignore_row_if="either_value_is_missing")]
            return []
        value: Any = c.right
        if ent.field(c.left).type in ("bigint", "double", "decimal(20,2)"):
            value = float(c.right)
        if c.op in (">=", ">"):
            return [self._exp("expect_column_values_to_be_between", column=c.left, min_value=value,
                              strict_min=c.op == ">")]
        if c.op in ("<=", "<"):
            return [self._exp("expect_column_values_to_be_between", column=c.left, max_value=value,
                              strict_max=c.op == "<")]
        kind = "expect_column_values_to_be_in_set" if c.op == "=" else "expect_column_values_to_not_be_in_set"
        return [self._exp(kind, column=c.left, value_set=[value])]

    def meaning(self) -> tuple[str, str]:
        c = self.comparison
        zh, en = _OP_WORDS[c.op]
        right = c.right if c.right_is_field else repr(c.right)
        return f"{c.left} {zh} {right}（{c.text()}）", f"{c.left} {en} {right} ({c.text()})"


@ROW_RULES.register
class RequiredIf(CrossFieldRule):
    """``field`` must have a value when ``when`` holds (``when`` in the grammar of ``compare``)."""

    rule: Literal["required_if"]
    field: str
    when: str

    @field_validator("when")
    @classmethod
    def _parses(cls, v: str) -> str:
        return _comparison(v)

    def refs(self) -> list[str]:
        return [self.field, *Comparison.parse(self.when).refs()]

    def check(self, ent: Any) -> None:
        Comparison.parse(self.when).check(ent)

    def violated(self, ent: Any, dialect: str) -> tuple[str, str]:
        c = Comparison.parse(self.when)
        return (f"{quoting(dialect)[0](self.field)} is null and {c.known_sql(ent, dialect)} "
                f"and {c.holds_sql(ent, dialect)}", self.field)

    def meaning(self) -> tuple[str, str]:
        when = Comparison.parse(self.when).text()
        return f"当 {when} 时 {self.field} 必填", f"{self.field} is required when {when}"


@ROW_RULES.register
class AtLeastOneOf(CrossFieldRule):
    """At least one of ``fields`` has a value."""

    rule: Literal["at_least_one_of"]
    fields: Annotated[list[Annotated[str, Field(pattern=IDENT)]], Field(min_length=2)]

    def refs(self) -> list[str]:
        return list(self.fields)

    def violated(self, ent: Any, dialect: str) -> tuple[str, str]:
        nulls = " and ".join(f"{quoting(dialect)[0](f)} is null" for f in self.fields)
        return f"({nulls})", self.fields[0]

    def meaning(self) -> tuple[str, str]:
        names = ", ".join(self.fields)
        return f"{names} 至少填写一项", f"at least one of {names} has a value"


class DateRule(CrossFieldRule):
    def check(self, ent: Any) -> None:
        if ent.field(self.field).type != "date":
            raise ValueError(f"rule {self.rule!r} applies to a date field; {self.field!r} is "
                             f"{ent.field(self.field).type}")

    def refs(self) -> list[str]:
        return [self.field]


@ROW_RULES.register
class NotInFuture(DateRule):
    """The date ``field`` is not after the run date."""

    rule: Literal["not_in_future"]
    field: str

    def violated(self, ent: Any, dialect: str) -> tuple[str, str]:
        return f"{quoting(dialect)[0](self.field)} > {current_date(dialect)}", self.field

    def meaning(self) -> tuple[str, str]:
        return f"{self.field} 不晚于运行日期", f"{self.field} is not after the run date"


@ROW_RULES.register
class NotBeforeBound(DateRule):
    """The date ``field`` is not before ``bound`` (YYYY-MM-DD)."""

    rule: Literal["not_before"]
    field: str
    bound: dt.date

    def violated(self, ent: Any, dialect: str) -> tuple[str, str]:
        return f"{quoting(dialect)[0](self.field)} < {date_sql(self.bound)}", self.field

    def gx(self, std: Any, ent: Any) -> list[dict[str, Any]]:
        return [self._exp("expect_column_values_to_be_between", column=self.field,
                          min_value=self.bound.isoformat())]

    def meaning(self) -> tuple[str, str]:
        d = self.bound.isoformat()
        return f"{self.field} 不早于 {d}", f"{self.field} is not before {d}"


def warn_reasons(ent: Any) -> dict[str, Any]:
    """reason -> rule of the entity's rules whose severity is warn (what feedback and the run
    record count as warnings)."""
    return {r.reason: r for r in ent.rules if getattr(r, "severity", "quarantine") == "warn"}
