"""What each step of the walk returns, typed, and the one place they become plain data.

The steps hand these to each other. Between Airflow tasks (XCom) and into the run record
(``build/runs/<run_id>.json``) they travel as plain JSON dicts: :meth:`StepResult.to_xcom` writes
one, :meth:`StepResult.from_xcom` reads it back (pydantic validates the dict against the
dataclass). Plain dicts of str, int, bool, None, lists and dicts are what crosses, because that
is what Airflow 3.3's XCom serde (airflow.sdk.serde) keeps as it is: a dataclass it would store
by class name with ``dataclasses.asdict`` (nested results come back as dicts, its own docstring
says) and refuse to load unless the class is in ``[core] allowed_deserialization_classes``.

A field listed in ``_omit_when_none`` is left out of the dict while it is None: the run record
and the XCom keep the shape they had before the steps were typed (a gate result says
``reused_from_run`` only when it was reused, an intake ``reused`` only when it was).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import TypeAdapter

from tongban.steps.intake.land import IntakeResult


def now() -> str:
    """A step's timestamp: UTC, to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def _plain(value: Any) -> Any:
    if isinstance(value, StepResult):
        return value.to_xcom()
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@functools.cache
def _adapter(cls: type) -> TypeAdapter:
    return TypeAdapter(cls)


class StepResult:
    """Mixed into each result dataclass: its plain-dict form and back."""

    _omit_when_none: ClassVar[tuple[str, ...]] = ()

    def to_xcom(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)  # type: ignore[arg-type]
                if not (f.name in self._omit_when_none and getattr(self, f.name) is None)}

    @classmethod
    def from_xcom(cls, data: dict[str, Any] | Self) -> Self:
        if isinstance(data, cls):
            return data
        return _adapter(cls).validate_python(data)


@dataclass
class Source(StepResult):
    source_id: str
    entity: str
    province_code: str


@dataclass
class Run(StepResult):
    """start: the run's name and what it covers."""

    run_id: str
    started_at: str
    entities: list[str]
    sources: list[Source]
    standard_versions: dict[str, str]
    pii: dict[str, dict[str, str]]


@dataclass
class Landed(IntakeResult, StepResult):
    """intake: one delivery landed (or held back, or missing). ``reused``: recognised by its
    sha256 and not read again; ``landed_run_id`` names the run that landed it."""

    reused: bool | None = None
    landed_run_id: str | None = None
    _omit_when_none = ("reused", "landed_run_id", "held_path", "held_columns")

    @property
    def key(self) -> str:
        return f"{self.source_id}/{self.entity}"


@dataclass
class Mart(StepResult):
    relation: str
    entities: list[str]


@dataclass
class Transformed(StepResult):
    """harmonize: what dbt built, and per entity and source the counts of the checked rows."""

    success: bool
    dbt_nodes: int
    counts: dict[str, dict[str, dict[str, Any]]]
    warehouse: str
    marts: dict[str, Mart]
    reused_checked: list[str]
    unchanged_entities: list[str]
    full_refresh: bool
    entity_fingerprints: dict[str, str]
    #: the engine dbt built on (tongban.common.config.ENGINES)
    engine: str = "duckdb"


@dataclass
class GateResult(StepResult):
    """One entity's quality gate (tongban.steps.gate.run_gate). ``reused_from_run``: the entity
    was not built again, and this is the result recorded by that run."""

    success: bool  # False iff any expectation with meta.blocking == True failed
    blocking_failures: list[str] = field(default_factory=list)  # "expect_x(col): 3 unexpected"
    warnings: list[str] = field(default_factory=list)  # failed non-blocking expectations
    evaluated: int = 0  # number of expectations evaluated
    docs_index: Path | None = None  # local Data Docs index.html
    reused_from_run: str | None = None
    _omit_when_none = ("reused_from_run",)

    def to_dict(self) -> dict[str, Any]:
        return self.to_xcom()


@dataclass
class Gated(StepResult):
    """gate: one result per entity."""

    success: bool
    entities: dict[str, GateResult]


@dataclass
class DeliveryCounts(StepResult):
    """One delivery's rows: delivered = harmonized + quarantined. ``held``: of the harmonized rows,
    those not published because the delivery is over a gate threshold (``held_reason`` says which,
    in tongban's words); then published = harmonized - held = 0. ``by_reason``: rows quarantined
    with each reason (a row with several counts under each); None where there are none)."""

    delivered: int | None
    harmonized: int
    quarantined: int | None
    held: int | None = None
    held_reason: str | None = None
    by_reason: dict[str, int] | None = None
    _omit_when_none = ("held", "held_reason", "by_reason")  # the shape before gate thresholds

    @property
    def published(self) -> int:
        return self.harmonized - (self.held or 0)


@dataclass
class Conservation(StepResult):
    """conserve: per delivery (``source/entity``), delivered = harmonized + quarantined, where the
    harmonized rows are published, or held whole with the delivery (published + held)."""

    ok: bool
    per_delivery: dict[str, DeliveryCounts]


@dataclass
class DeliveryRecord(StepResult):
    """One delivery's line of the run record (exchange_runs, build/runs/<run_id>.json)."""

    run_id: str
    started_at: str
    finished_at: str
    entity: str
    source_id: str
    province_code: str
    delivery_file: str
    delivery_sha256: str | None
    status: str
    rows_delivered: int | None
    rows_published: int
    rows_quarantined: int | None
    gate_success: bool
    gate_summary: str
    standard_version: str
    mapping_version: str
    snapshot_version: int | None
    message: str | None
    top_reasons: str
    kept_snapshot_version: int | None
    #: a delivery over a gate threshold (status "held"): its rows that passed, not published
    rows_held: int = 0
    held_reason: str | None = None


@dataclass
class RunReport(StepResult):
    """The run record publish writes to ``build/runs/<run_id>.json`` (and ``latest.json``)."""

    run_id: str
    finished_at: str
    snapshots: dict[str, dict[str, Any]]
    deliveries: list[DeliveryRecord]
    unmapped: dict[str, dict[str, list[dict[str, Any]]]]
    held_back: list[dict[str, Any]]
    crosswalk_versions: dict[str, dict[str, list[str]]]
    gate: Gated
    messages: list[str]
    exchange_problems: list[str]
    #: the engine dbt built on (tongban.common.config.ENGINES)
    engine: str = "duckdb"


@dataclass
class Published(StepResult):
    """publish: the snapshots made, where the run record and the dictionary are."""

    run_id: str
    snapshots: dict[str, dict[str, Any]]
    report: str
    dictionary: str


@dataclass
class Feedback(StepResult):
    files: list[str] = field(default_factory=list)


@dataclass
class Walk:
    """Everything the steps before publish returned (not serialised: publish's inputs)."""

    run: Run
    intakes: list[Landed]
    transformed: Transformed
    gated: Gated
    conservation: Conservation
