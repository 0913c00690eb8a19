"""The rules a field carries (its attributes in ``standards/entities/*.yaml``).

Each rule kind owns some of the field's attributes (``attrs``, described for editors in
``docs``) and says what follows from them: the row rules' SQL (``row_<dialect>``), the gate's
GX expectations (``gx``, each with its place in the suite), the dictionary's words (zh + en) and
whether a change of an attribute can reject rows that passed before (``stricter``: a major
version) or not (minor). Catalogue order is the order the dictionary lists a field's rules in.
The key and ``derived`` are what a field *is*, not rules: the targets handle them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from tongban.common.sqlquote import quote_ident, quote_literal
from tongban.standards.rules import spark
from tongban.standards.rules.base import Catalogue, Check, RowSql, show
from tongban.standards.rules.sqlparts import EMAIL_RE
from tongban.standards.rules.validators import VALIDATORS

FIELD_RULES: Catalogue[FieldRule] = Catalogue("field rule")
FORMATS: Catalogue[Format] = Catalogue("format")

PHONE_NORMAL_RE = r"^(0[1-9][0-9]{1,2}-[1-9][0-9]{6,7}|1[3-9][0-9][0-9*]{4}[0-9]{4})$"
NUMBER_TYPES = ("bigint", "double", "decimal(20,2)")

# Where each expectation stands in a field's part of the suite (expectations/*.json keep their order).
GX_REQUIRED, GX_CODE_LIST, GX_EMAIL, GX_VALIDATOR, GX_RANGE, GX_PHONE = range(1, 7)


def expectation(kind: str, blocking: bool, why: str, **kwargs: Any) -> dict[str, Any]:
    """A GX expectation as the suite JSON holds it; ``meta.blocking`` stops the publication."""
    return {"type": kind, "kwargs": kwargs, "meta": {"blocking": blocking, "why": why}}


class FieldRule:
    name: ClassVar[str]
    attrs: ClassVar[tuple[str, ...]] = ()
    docs: ClassVar[dict[str, str]] = {}
    #: the row rules check presence (pass 0) before values (pass 1): the order of a row's reasons
    row_pass: ClassVar[int] = 1

    def row_duckdb(self, ent: Any, f: Any) -> RowSql | None:
        return None

    def row_spark(self, ent: Any, f: Any) -> RowSql | None:
        return None

    def gx(self, std: Any, ent: Any, f: Any) -> list[tuple[int, dict[str, Any]]]:
        return []

    def words(self, ent: Any, f: Any) -> list[str]:
        return []

    def dbt_yml(self, std: Any, f: Any) -> tuple[list[str], list[str]]:
        """(constraints, data tests) of the harmonized model's column (YAML flow text)."""
        return [], []

    def stricter(self, attr: str, old: Any, new: Any) -> bool:
        """Whether going from ``old`` to ``new`` can reject rows that passed before."""
        return True

    def change(self, name: str, attr: str, old: Any, new: Any) -> tuple[str, str]:
        """(level, what) of a change of one of ``attrs``."""
        stricter = self.stricter(attr, old, new)
        return ("major" if stricter else "minor",
                f"field {name!r} {attr} changed from {show(old)} to {show(new)}"
                + (" (can reject rows that passed before)" if stricter else ""))


def owner(attr: str) -> FieldRule | None:
    """The field rule that owns a field attribute."""
    return next((r for r in FIELD_RULES if attr in r.attrs), None)


class Format:
    name: ClassVar[str]
    regex: ClassVar[str]
    why: ClassVar[str]
    gx_place: ClassVar[int]
    words: ClassVar[str]
    half_width: ClassVar[bool] = False  # the delivered value is read half-width first


@FORMATS.register
class EmailFormat(Format):
    name = "email"
    regex = EMAIL_RE
    why = "normalised e-mail"
    gx_place = GX_EMAIL
    words = "规范化电子邮箱 normalised e-mail address (lower case)"


@FORMATS.register
class PhoneFormat(Format):
    name = "phone"
    regex = PHONE_NORMAL_RE
    why = "normalised phone number"
    gx_place = GX_PHONE
    half_width = True
    words = "规范化电话号码 normalised phone number"


@FIELD_RULES.register
class Required(FieldRule):
    name = "required"
    attrs = ("required",)
    docs = {"required": "A row without a value is quarantined (a blocking gate expectation)."}
    row_pass = 0

    def row_duckdb(self, ent: Any, f: Any) -> RowSql | None:
        if not f.required:
            return None
        # a required field left empty by a blocking mapping issue already has its reason
        cond = (f"{quote_ident(f.name)} is null and not list_contains(list_transform(blocking_issues, "
                f"lambda x: x.field), {quote_literal(f.name)})")
        return RowSql(checks=(Check(cond, "missing_required", f.name, "null", masked=False),))

    def row_spark(self, ent: Any, f: Any) -> RowSql | None:
        if not f.required:
            return None
        cond = (f"{spark.spark_ident(f.name)} is null and not array_contains(transform(blocking_issues, "
                f"x -> x.field), {spark.spark_literal(f.name)})")
        return RowSql(checks=(Check(cond, "missing_required", f.name, "null", masked=False),))

    def gx(self, std: Any, ent: Any, f: Any) -> list[tuple[int, dict[str, Any]]]:
        if not f.required:
            return []
        return [(GX_REQUIRED, expectation("expect_column_values_to_not_be_null", f.gate == "blocking",
                                          f"{f.name} is required", column=f.name))]

    def dbt_yml(self, std: Any, f: Any) -> tuple[list[str], list[str]]:
        return (["{type: not_null}"] if f.required else []), []

    def change(self, name: str, attr: str, old: Any, new: Any) -> tuple[str, str]:
        return ("major", f"field {name!r} became required") if new else ("minor", f"field {name!r} became optional")


@FIELD_RULES.register
class ValidatorRule(FieldRule):
    """``validator: <name>``: one of the validators of tongban.standards.rules.validators."""

    name = "validator"
    attrs = ("validator", "division_level")
    docs = {"validator": "A national identifier or code validator; a value it rejects quarantines the row "
                         "with the validator's problem code.",
            "division_level": "With validator gbt2260: the level the division code must have."}

    def row_duckdb(self, ent: Any, f: Any) -> RowSql | None:
        if not f.validator:
            return None
        problem = quote_ident(f"{f.name}__problem")
        column = f"{VALIDATORS[f.validator].sql_duckdb(quote_ident(f.name), f)} as {problem}"
        check = Check(f"{problem} is not null", problem, f.name, quote_ident(f.name), reason_is_sql=True)
        return RowSql(columns=(column,), helpers=(problem,), checks=(check,))

    def row_spark(self, ent: Any, f: Any) -> RowSql | None:
        if not f.validator:
            return None
        problem, value = spark.spark_ident(f"{f.name}__problem"), spark.spark_ident(f.name)
        column = f"{VALIDATORS[f.validator].sql_spark(value, f)} as {problem}"
        check = Check(f"{problem} is not null", problem, f.name, value, reason_is_sql=True)
        return RowSql(columns=(column,), helpers=(problem,), checks=(check,))

    def gx(self, std: Any, ent: Any, f: Any) -> list[tuple[int, dict[str, Any]]]:
        if f.validator not in VALIDATORS:
            return []
        # the models already quarantined every value the validator rejects; the gate checks
        # the published shape again (counts only: these columns hold personal data)
        return [(GX_VALIDATOR, expectation("expect_column_values_to_match_regex", f.gate == "blocking",
                                           f"{f.name} has the shape of {f.validator}", column=f.name,
                                           regex=VALIDATORS[f.validator].shape))]

    def words(self, ent: Any, f: Any) -> list[str]:
        if not f.validator:
            return []
        v = VALIDATORS.get(f.validator)
        zh, en = v.describe(f) if v else (f.validator, f.validator)
        return [f"校验 {zh} — validated: {en}; a value it rejects quarantines the row"]

    def stricter(self, attr: str, old: Any, new: Any) -> bool:
        return new is not None


@FIELD_RULES.register
class FormatRule(FieldRule):
    """``format: <name>``: the normalised form the gate checks (tongban.standards.rules.fields.FORMATS)."""

    name = "format"
    attrs = ("format",)
    docs = {"format": "Normalised form checked by the gate (use the email/phone step in mappings)."}

    def gx(self, std: Any, ent: Any, f: Any) -> list[tuple[int, dict[str, Any]]]:
        fmt = FORMATS.get(f.format)
        if fmt is None:
            return []
        return [(fmt.gx_place, expectation("expect_column_values_to_match_regex", f.gate == "blocking", fmt.why,
                                           column=f.name, regex=fmt.regex))]

    def words(self, ent: Any, f: Any) -> list[str]:
        fmt = FORMATS.get(f.format)
        return [fmt.words] if fmt else []

    def stricter(self, attr: str, old: Any, new: Any) -> bool:
        return new is not None


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _num_words(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else repr(float(x))


@FIELD_RULES.register
class Range(FieldRule):
    name = "range"
    attrs = ("min", "max")
    docs = {"min": "Inclusive lower bound of a number; below it the row is quarantined (out_of_range).",
            "max": "Inclusive upper bound of a number; above it the row is quarantined (out_of_range)."}

    def row_duckdb(self, ent: Any, f: Any) -> RowSql | None:
        if f.min is None and f.max is None:
            return None
        return self._row(f, quote_ident(f.name))

    def row_spark(self, ent: Any, f: Any) -> RowSql | None:
        if f.min is None and f.max is None:
            return None
        return self._row(f, spark.spark_ident(f.name))

    def _row(self, f: Any, v: str) -> RowSql:
        conds = ([f"{v} < {_number(f.min)}"] if f.min is not None else []) + \
                ([f"{v} > {_number(f.max)}"] if f.max is not None else [])
        return RowSql(checks=(Check(" or ".join(conds), "out_of_range", f.name, v),))

    def gx(self, std: Any, ent: Any, f: Any) -> list[tuple[int, dict[str, Any]]]:
        if f.min is None and f.max is None:
            return []
        return [(GX_RANGE, expectation("expect_column_values_to_be_between", f.gate == "blocking",
                                       f"{f.name} within the standard's range", column=f.name,
                                       min_value=f.min, max_value=f.max))]

    def words(self, ent: Any, f: Any) -> list[str]:
        if f.min is None and f.max is None:
            return []
        lo = _num_words(f.min) if f.min is not None else "−∞"
        hi = _num_words(f.max) if f.max is not None else "+∞"
        return [f"取值范围 range {lo} ≤ x ≤ {hi}; outside → out_of_range"]

    def stricter(self, attr: str, old: Any, new: Any) -> bool:
        if attr == "min":
            return new is not None and (old is None or new > old)
        return new is not None and (old is None or new < old)


@FIELD_RULES.register
class NotFuture(FieldRule):
    name = "not_future"
    attrs = ("not_future",)
    docs = {"not_future": "A date after the run date quarantines the row (date_in_future)."}

    def row_duckdb(self, ent: Any, f: Any) -> RowSql | None:
        if not f.not_future:
            return None
        v = quote_ident(f.name)
        return RowSql(checks=(Check(f"{v} > current_date", "date_in_future", f.name, v),))

    def row_spark(self, ent: Any, f: Any) -> RowSql | None:
        if not f.not_future:
            return None
        v = spark.spark_ident(f.name)  # current_date() in the session's zone: spark.session_conf()
        return RowSql(checks=(Check(f"{v} > current_date()", "date_in_future", f.name, v),))

    def words(self, ent: Any, f: Any) -> list[str]:
        return ["不得晚于运行日期 not after the run date; later → date_in_future"] if f.not_future else []

    def stricter(self, attr: str, old: Any, new: Any) -> bool:
        return bool(new)


def date_sql(d: dt.date) -> str:
    return f"date {quote_literal(d.isoformat())}"


@FIELD_RULES.register
class NotBefore(FieldRule):
    name = "not_before"
    attrs = ("not_before",)
    docs = {"not_before": "The earliest plausible date (YYYY-MM-DD); an earlier date quarantines the row "
                          "(date_too_early) instead of passing as a placeholder such as 1800-01-01."}

    def row_duckdb(self, ent: Any, f: Any) -> RowSql | None:
        if f.not_before is None:
            return None
        v = quote_ident(f.name)
        return RowSql(checks=(Check(f"{v} < {date_sql(f.not_before)}", "date_too_early", f.name, v),))

    def row_spark(self, ent: Any, f: Any) -> RowSql | None:
        if f.not_before is None:
            return None
        v = spark.spark_ident(f.name)
        return RowSql(checks=(Check(f"{v} < {date_sql(f.not_before)}", "date_too_early", f.name, v),))

    def words(self, ent: Any, f: Any) -> list[str]:
        if f.not_before is None:
            return []
        d = f.not_before.isoformat()
        return [f"不得早于 {d} not before {d}; earlier → date_too_early"]

    def stricter(self, attr: str, old: Any, new: Any) -> bool:
        return new is not None and (old is None or new > old)
