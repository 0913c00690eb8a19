"""The API's request and response models: the OpenAPI document is the contract."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

Sharing = Literal["unconditional", "conditional", "none"]
ProvinceCode = Field(pattern=r"^[1-9][0-9]$")


#: the state keeps naive UTC times (SQLite has no zones); answers say UTC explicitly (RFC 3339)
UtcTime = Annotated[datetime, AfterValidator(lambda t: t if t.tzinfo else t.replace(tzinfo=UTC))]


#: a row id in the state database (SQLite's INTEGER, Postgres' integer)
RowId = Annotated[int, Path(ge=1, le=2_147_483_647)]


class Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SnapshotInfo(Closed):
    entity: str
    version: int
    created_at: str
    run_id: str


class FieldInfo(Closed):
    name: str
    sharing: Sharing | None
    columns: list[str]  # the published columns carrying it (a personal field: _pseudonym and _masked)


class EntityInfo(Closed):
    entity: str
    key: list[str]
    sharing: Sharing | None
    fields: list[FieldInfo]
    snapshot: SnapshotInfo | None


class EntityList(Closed):
    entities: list[EntityInfo]


class RowsPage(Closed):
    rows: list[dict[str, Any]]
    next_cursor: str | None
    snapshot: SnapshotInfo


class Row(Closed):
    row: dict[str, Any]
    snapshot: SnapshotInfo


class ApplicationIn(Closed):
    entity: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")
    fields: list[str] | None = Field(default=None, max_length=200)
    provinces: list[str] = Field(min_length=1, max_length=40)
    purpose: str = Field(min_length=1, max_length=2000)
    days: int = Field(ge=1, le=366)


class DecisionIn(Closed):
    approve: bool
    reason: str = Field(min_length=1, max_length=2000)


class DecisionOut(Closed):
    province: str
    approve: bool | None
    reason: str | None
    decided_at: UtcTime | None


class ApplicationOut(Closed):
    id: int
    consumer: str
    entity: str
    fields: list[str] | None
    provinces: list[str]
    purpose: str
    days: int
    status: str
    created_at: UtcTime
    decisions: list[DecisionOut]


class ApplicationCreated(Closed):
    id: int
    status: Literal["pending"]


class ApplicationList(Closed):
    applications: list[ApplicationOut]


class GrantOut(Closed):
    id: int
    consumer: str
    entity: str
    province: str
    fields: list[str] | None
    created_at: UtcTime
    expires_at: UtcTime
    revoked_at: UtcTime | None
    active: bool


class GrantList(Closed):
    grants: list[GrantOut]


class Signature(Closed):
    key_id: str
    signed_at: str
    value: str  # base64 Ed25519 over the canonical JSON of {answer, key_id, signed_at}


class Verification(Closed):
    found: bool
    valid: bool
    status: str | None
    issuing_province: str | None
    snapshot: SnapshotInfo | None
    signature: Signature | None = None


class PublicKey(Closed):
    key_id: str
    algorithm: str
    public_key: str  # base64 of the raw 32-byte Ed25519 public key
    created: str


class KeyList(Closed):
    keys: list[PublicKey]


class Problem(Closed):
    detail: str
