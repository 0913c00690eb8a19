"""Typed models of the files in ``standards/``.

The committee edits YAML and CSV; these models are what the rest of tongban sees. They reject
anything outside the closed vocabulary (unknown keys, unknown transform steps, paths that
climb out of the delivery inbox), so nothing in a mapping file can become code. The vocabulary of
rules and steps (validator names, formats, row rules, steps) is the rule catalogue's
(tongban.standards.rules): the models follow it when a kind is registered.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import PurePosixPath
from dataclasses import dataclass, field as dc_field
from typing import Annotated, Any, Literal, Union

from pydantic import Field, field_validator, model_validator

from tongban.standards.rules import AMOUNT_UNITS, FORMATS, ROW_RULES, STEPS, VALIDATORS
from tongban.standards.rules.base import IDENT, SEMVER, Label, Strict
from tongban.standards.rules.row import MinAgeAt, UsccRegionAgrees

FieldType = Literal["varchar", "varchar[]", "date", "bigint", "double", "decimal(20,2)", "boolean"]
__all__ = ["AMOUNT_UNITS", "IDENT", "SEMVER", "Label", "MinAgeAt", "Strict", "UsccRegionAgrees"]
#: who may read a field through the served exchange (tongban.serve): 无条件共享 any registered consumer,
#: 有条件共享 only with a grant approved by the producing province, 不予共享 never row by row
Sharing = Literal["unconditional", "conditional", "none"]


class FieldDef(Strict):
    name: Annotated[str, Field(pattern=IDENT)]
    type: FieldType
    required: bool = False
    code_list: Annotated[str, Field(pattern=IDENT)] | None = None
    on_unmapped: Literal["quarantine", "unknown"] = "quarantine"
    on_invalid: Literal["quarantine", "null"] = "quarantine"
    format: Literal[FORMATS.names()] | None = None  # type: ignore[valid-type]  (the catalogue's formats)
    derived: Literal["identity_hash", "mapping_constant"] | None = None
    gate: Literal["blocking", "warning"] = "blocking"
    #: a national identifier or code validator (tongban.common.validators and macros/validators.sql);
    #: a value it rejects quarantines the row with the validator's problem code.
    validator: Literal[VALIDATORS.names()] | None = None  # type: ignore[valid-type]
    division_level: Literal["province", "prefecture", "county"] | None = None  # for gbt2260
    min: float | None = None  # inclusive bounds of a number; outside -> out_of_range
    max: float | None = None
    not_future: bool = False  # a date after the run date -> date_in_future
    #: the earliest plausible date (a 1800-01-01 birth date is a placeholder, not a birth)
    not_before: dt.date | None = None  # an earlier date -> date_too_early
    unique: bool = False  # a value seen earlier in the region -> duplicate_value
    #: personal information: published only as <name>_pseudonym (keyed HMAC) and <name>_masked.
    pii: Literal["name", "id_number", "phone"] | None = None
    sharing: Sharing | None = None  # where it differs from the entity's sharing class
    label: Label
    description: Label | None = None
    #: other names a delivery gives this field's column (数据集名称, 目录名称, title): what
    #: `tongban standards propose` matches column names against, besides the labels
    aliases: list[Annotated[str, Field(min_length=1, max_length=128)]] = []

    @model_validator(mode="after")
    def _consistent(self) -> FieldDef:
        if self.division_level and self.validator != "gbt2260":
            raise ValueError("division_level applies only with validator: gbt2260")
        if (self.min is not None or self.max is not None) and self.type not in ("bigint", "double", "decimal(20,2)"):
            raise ValueError("min/max apply only to number fields (bigint, double, decimal(20,2))")
        if self.not_future and self.type != "date":
            raise ValueError("not_future applies only to date fields")
        if self.not_before is not None and self.type != "date":
            raise ValueError("not_before applies only to date fields")
        if self.pii and (self.code_list or self.type != "varchar"):
            raise ValueError("a pii field must be varchar without a code list (its values are never listed)")
        return self


def _rule_union() -> Any:
    """An entity's ``rules:`` item: one of the catalogue's row rule models, chosen by ``rule``."""
    return Annotated[Union[tuple(ROW_RULES)], Field(discriminator="rule")]  # noqa: UP007


Rule = _rule_union()


class GateThresholds(Strict):
    """The committee's limits on one delivery (source × entity) before it is published: the share of
    its rows quarantined, and per reason (``unmapped_code``, ``invalid_date``…) the share of its rows
    quarantined with that reason. A delivery over a limit is held: not published, the source's
    previous publication kept. Shares are in [0, 1] (the lint refuses others, with file:line)."""

    max_quarantine_share: float | None = None
    max_share_by_rule: dict[str, float] = {}


class GateOverride(GateThresholds):
    """A mapping's own limits for its source, replacing the entity's where they say something; the
    committee writes why beside them (``reason``, required by the lint)."""

    reason: str | None = None


class Entity(Strict):
    entity: Annotated[str, Field(pattern=IDENT)]
    version: Annotated[str, Field(pattern=SEMVER)]
    label: Label
    description: Label | None = None
    key: str
    sharing: Sharing | None = None  # the class of every field that does not name its own
    #: how often each province is expected to deliver (the overview's freshness: on time / late / overdue)
    update_frequency_days: Annotated[int, Field(ge=1)] | None = None
    fields: list[FieldDef]
    rules: list[Rule] = []
    gate: GateThresholds | None = None  # the committee's default limits for every source

    @model_validator(mode="after")
    def _key_is_a_field(self) -> Entity:
        names = [f.name for f in self.fields]
        if self.key not in names:
            raise ValueError(f"key {self.key!r} is not one of the fields")
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"field(s) defined twice: {', '.join(sorted(dupes))}")
        reasons = [r.reason for r in self.rules]
        for i, r in enumerate(self.rules):  # "rules[i]: " lets the loader name the rule's line
            for ref in r.refs():
                if ref not in names:
                    raise ValueError(f"rules[{i}]: rule {r.rule!r} refers to unknown field {ref!r}")
            try:
                if hasattr(r, "check"):
                    r.check(self)
            except ValueError as exc:
                raise ValueError(f"rules[{i}]: {exc}") from None
            if reasons.count(r.reason) > 1:
                raise ValueError(f"rules[{i}]: reason {r.reason!r} is used by two rules (each rule has its own)")
        return self

    @property
    def pii(self) -> dict[str, str]:
        return {f.name: f.pii for f in self.fields if f.pii}

    def sharing_of(self, name: str) -> Sharing | None:
        """A field's sharing class: its own, else the entity's (None when neither says)."""
        return self.field(name).sharing or self.sharing

    def field(self, name: str) -> FieldDef:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)


class Code(Strict):
    code: Annotated[str, Field(min_length=1, max_length=64)]
    zh: str
    en: str


class CodeList(Strict):
    code_list: Annotated[str, Field(pattern=IDENT)]
    version: Annotated[str, Field(pattern=SEMVER)]
    label: Label
    codes: list[Code]

    @property
    def values(self) -> list[str]:
        return [c.code for c in self.codes]


class Column(Strict):
    name: Annotated[str, Field(min_length=1, max_length=128)]
    required: bool = False

    @field_validator("name")
    @classmethod
    def _printable(cls, v: str) -> str:
        if any(ord(ch) < 32 for ch in v) or '"' in v:
            raise ValueError("a column name may not contain quotes or control characters")
        return v


class DeliverySpec(Strict):
    file: str
    format: Literal["json", "jsonl", "csv", "xlsx"] | None = None
    sheet: str | int | None = None
    columns: list[Column]
    #: a delivery with a header and no rows replaces the source's publication with nothing; by
    #: default it is held back (status `empty`) and the previous publication kept
    empty_is_valid: bool = False

    @field_validator("file")
    @classmethod
    def _inside_inbox(cls, v: str) -> str:
        p = PurePosixPath(v.replace("\\", "/"))
        if p.is_absolute() or ".." in p.parts or not v.strip() or re.match(r"^[A-Za-z]:", v):
            raise ValueError(
                "the delivery file must be a path relative to the inbox, without '..' "
                "(e.g. opendata_catalogs/x.json)"
            )
        return v


# ---- the closed vocabulary of transform steps ------------------------------------------------

# The closed vocabulary of transform steps is the step catalogue (tongban.standards.rules.STEPS);
# these name views of it are what the schema and messages list.
SIMPLE_STEPS: tuple[str, ...] = ()
PARAM_STEPS: tuple[str, ...] = ()
TERMINAL_STEPS: tuple[str, ...] = ()


class Step(Strict):
    """One transform step. Written in YAML as a bare name (``trim``) or a one-key map
    (``{crosswalk: domain}``)."""

    op: str
    arg: Any = None

    @model_validator(mode="before")
    @classmethod
    def _from_yaml(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"op": value}
        if isinstance(value, dict) and "op" not in value:
            if len(value) != 1:
                raise ValueError("a step is a name or a map with exactly one key, e.g. {crosswalk: domain}")
            ((op, arg),) = value.items()
            return {"op": op, "arg": arg}
        return value

    @model_validator(mode="after")
    def _known(self) -> Step:
        kind = STEPS.get(self.op)
        if kind is None:
            raise ValueError(f"unknown step {self.op!r}; allowed: {', '.join(SIMPLE_STEPS + PARAM_STEPS)}")
        kind.check_arg(self.arg)
        return self


class FieldMapping(Strict):
    source: str | None = Field(default=None, alias="from")
    steps: list[Step] = []
    null_values: list[str] | None = None  # overrides the mapping's list for this field
    #: the review of a proposed entry (as in a crosswalk row): absent means reviewed before review
    #: statuses existed; `proposed` on a blocking field fails the lint until a reviewer approves it
    status: Literal["proposed", "approved", "rejected"] | None = None
    author: str = ""
    reviewer: str = ""
    reviewed_on: str = ""

    @model_validator(mode="after")
    def _shape(self) -> FieldMapping:
        ops = [s.op for s in self.steps]
        if self.source is None and "constant" not in ops:
            raise ValueError("a field mapping needs 'from: <source column>' or a {constant: ...} step")
        for i, op in enumerate(ops):
            if STEPS[op].terminal and i != len(ops) - 1:
                raise ValueError(f"step {op!r} must be the last step of a field")
            if STEPS[op].first and i != 0:
                raise ValueError(f"step {op!r} must be the first step")
        return self


class AbsentDecision(Strict):
    """The committee's decision that a source has no value for a standard field (issue 18): its rows
    get ``unknown`` (the field's code list has it) and are counted as "absent by decision" in the
    run record. A decision on a required field counts only once reviewed (the crosswalks' review
    workflow: ``status: approved`` with an author and another member as reviewer)."""

    reason: Annotated[str, Field(min_length=1)]
    status: str = "proposed"
    author: str = ""
    reviewer: str = ""
    reviewed_on: str = ""

    @field_validator("reviewed_on", mode="before")
    @classmethod
    def _date_as_text(cls, v: Any) -> Any:
        return v.isoformat() if isinstance(v, dt.date) else v  # YAML reads 2026-12-01 as a date


class Mapping(Strict):
    source_id: Annotated[str, Field(pattern=IDENT)]
    entity: Annotated[str, Field(pattern=IDENT)]
    province_code: Annotated[str, Field(pattern=r"^\d{2}$")]
    version: Annotated[str, Field(pattern=SEMVER)]
    standard_version: Annotated[str, Field(pattern=SEMVER)]
    label: Label
    delivery: DeliverySpec
    identity: list[str]
    null_values: list[str] = ["", "None"]
    fields: dict[str, FieldMapping]
    gate: GateOverride | None = None  # this source's own limits, with the committee's reason
    #: standard fields the source does not have, by decision (field -> why, and its review)
    absent: dict[Annotated[str, Field(pattern=IDENT)], AbsentDecision] = {}

    def absent_by_decision(self) -> list[str]:
        """The fields whose absence is an approved decision (their rows are counted)."""
        return [name for name, d in self.absent.items() if d.status == "approved"]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.delivery.columns]


def _vocabulary_changed() -> None:
    """The closed vocabularies follow the catalogues: a kind registered (or a throwaway one in a
    test) is accepted, and shown by the JSON Schema, as soon as it is registered."""
    global SIMPLE_STEPS, PARAM_STEPS, TERMINAL_STEPS, Rule
    SIMPLE_STEPS = tuple(k.name for k in STEPS if not k.takes_arg)
    PARAM_STEPS = tuple(k.name for k in STEPS if k.takes_arg)
    TERMINAL_STEPS = tuple(k.name for k in STEPS if k.terminal)
    FieldDef.model_fields["validator"].annotation = Literal[VALIDATORS.names()] | None  # type: ignore[valid-type]
    FieldDef.model_fields["format"].annotation = Literal[FORMATS.names()] | None  # type: ignore[valid-type]
    FieldDef.model_rebuild(force=True)
    Rule = _rule_union()
    Entity.model_fields["rules"].annotation = list[Rule]
    Entity.model_rebuild(force=True)


for _catalogue in (STEPS, VALIDATORS, FORMATS, ROW_RULES):
    _catalogue.on_change(_vocabulary_changed)
_vocabulary_changed()


REVIEW_STATUSES = ("proposed", "approved", "rejected")
CROSSWALK_HEADER = ["source_value", "target_code", "status", "author", "reviewer", "reviewed_on"]


class CrosswalkEntry(Strict):
    """One row of a crosswalk CSV. Only ``approved`` entries map values of a field the standard
    marks blocking (``on_unmapped: quarantine``); a value that only a ``proposed`` entry maps is
    held back (``mapping_not_approved``); ``rejected`` entries map nothing."""

    source_value: str
    target_code: str
    line: int
    status: str = "approved"
    author: str = ""
    reviewer: str = ""
    reviewed_on: str = ""


class Crosswalk(Strict):
    source_id: str
    code_list: str
    path: str
    entries: list[CrosswalkEntry]

    def lookup(self, status: str = "approved") -> dict[str, str]:
        return {e.source_value: e.target_code for e in self.entries if e.status == status}


# What the committee's coverage (tongban.committee.coverage) counts in a delivery, as the dictionary
# shows it: the counting reads deliveries and lives above; the shape of the result lives here.
@dataclass(frozen=True)
class ValueCount:
    value: str
    rows: int
    status: str  # approved | proposed | rejected | unmapped
    target_code: str | None = None
    line: int | None = None  # line of the crosswalk entry, if any


@dataclass
class FieldCoverage:
    source_id: str
    entity: str
    field: str
    code_list: str
    step: str  # crosswalk | match_code
    crosswalk_path: str | None  # standards/mappings/<src>/crosswalks/<code_list>.csv (crosswalk only)
    delivery: str  # the delivery file the counts come from
    rows: int = 0  # rows with a non-null value at the crosswalk step
    values: list[ValueCount] = dc_field(default_factory=list)  # most rows first

    def rows_with(self, status: str) -> int:
        return sum(v.rows for v in self.values if v.status == status)

    @property
    def mapped_share(self) -> float:
        """Share of rows whose value maps through an approved entry (1.0 when there are none)."""
        return self.rows_with("approved") / self.rows if self.rows else 1.0
