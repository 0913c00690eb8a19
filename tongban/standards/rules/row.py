"""The cross-field rules of an entity (its ``rules:`` list). Each rule kind is one pydantic model:
its fields are the YAML it reads (the model *is* its schema; its docstring is what editors show),
its methods give the row rules' SQL, its words for the dictionary and how adding or removing it
classifies for versioning."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from tongban.common.sqlquote import quote_ident
from tongban.standards.rules import spark
from tongban.standards.rules.base import IDENT, Catalogue, Check, Label, Strict
from tongban.standards.rules.fields import date_sql

ROW_RULES: Catalogue[type[RowRule]] = Catalogue("row rule", instances=False)


class RowRule(Strict):
    """Base of the row rule models (each declares ``rule: Literal[<its name>]``, its fields,
    ``reason`` and ``description`` itself, so that the schema lists them in that order)."""

    #: the attributes that name fields of the entity (checked by the entity model)
    field_refs: ClassVar[tuple[str, ...]] = ()
    #: adding a rule can reject rows that passed before; removing one relaxes the standard
    added: ClassVar[str] = "major"
    removed: ClassVar[str] = "minor"

    def refs(self) -> list[str]:
        return [getattr(self, a) for a in self.field_refs]

    def checks_duckdb(self, ent: Any) -> list[Check]:
        raise NotImplementedError

    def checks_spark(self, ent: Any) -> list[Check]:
        raise NotImplementedError

    def gx(self, std: Any, ent: Any) -> list[dict[str, Any]]:
        return []

    def words(self) -> tuple[str, str]:
        raise NotImplementedError


@ROW_RULES.register
class MinAgeAt(RowRule):
    """The person identified by ``id_field`` (GB 11643, birth date inside) was at least ``years``
    old on ``date_field``."""

    rule: Literal["min_age_at"]
    id_field: str
    date_field: str
    years: Annotated[int, Field(ge=0, le=150)]
    reason: Annotated[str, Field(pattern=IDENT)]
    description: Label | None = None

    field_refs: ClassVar[tuple[str, ...]] = ("id_field", "date_field")

    def checks_duckdb(self, ent: Any) -> list[Check]:
        pid, day = quote_ident(self.id_field), quote_ident(self.date_field)
        return self._checks(ent, pid, day, f"gb11643_birth_date({pid})", "{born} + to_years({years})")

    def checks_spark(self, ent: Any) -> list[Check]:
        pid, day = spark.spark_ident(self.id_field), spark.spark_ident(self.date_field)
        # add_months clamps 29 February to the 28th, as DuckDB's date + interval does
        return self._checks(ent, pid, day, f"({spark.gb11643_birth_date(pid)})", "add_months({born}, 12 * {years})")

    def _checks(self, ent: Any, pid: str, day: str, born: str, plus_years: str) -> list[Check]:
        # a date before the field's earliest plausible one has its own reason: no age is
        # computed from a placeholder such as 1800-01-01
        earliest = ent.field(self.date_field).not_before
        plausible = f" and {day} >= {date_sql(earliest)}" if earliest is not None else ""
        adult = plus_years.format(born=born, years=self.years)
        return [Check(f"{born} is not null and {day} is not null{plausible} "
                      f"and {adult} > {day}", self.reason, self.id_field, pid)]

    def words(self) -> tuple[str, str]:
        return (f"按 {self.id_field} 的出生日期，{self.date_field} 时至少年满 {self.years} 周岁",
                f"the person identified by {self.id_field} was at least {self.years} years old "
                f"on {self.date_field}")


@ROW_RULES.register
class UsccRegionAgrees(RowRule):
    """Characters 3-8 of the USCC in ``uscc_field`` agree with the division in ``division_field``
    (equal, or the USCC names the prefecture/province the division lies in)."""

    rule: Literal["uscc_region_agrees"]
    uscc_field: str
    division_field: str
    reason: Annotated[str, Field(pattern=IDENT)]
    description: Label | None = None

    field_refs: ClassVar[tuple[str, ...]] = ("uscc_field", "division_field")

    def checks_duckdb(self, ent: Any) -> list[Check]:
        u, d = quote_ident(self.uscc_field), quote_ident(self.division_field)
        return [Check(f"not coalesce(uscc_region_agrees({u}, {d}), true)", self.reason, self.division_field, d)]

    def checks_spark(self, ent: Any) -> list[Check]:
        u, d = spark.spark_ident(self.uscc_field), spark.spark_ident(self.division_field)
        return [Check(f"not coalesce({spark.uscc_region_agrees(u, d)}, true)", self.reason, self.division_field, d)]

    def words(self) -> tuple[str, str]:
        return (f"{self.uscc_field} 第3-8位与 {self.division_field} 一致（相同或为其上级区划）",
                f"characters 3-8 of {self.uscc_field} agree with {self.division_field} "
                "(equal, or the prefecture/province it lies in)")
