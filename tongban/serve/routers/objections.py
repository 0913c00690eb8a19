"""异议: POST /objections, GET /objections, POST /objections/{id}/resolution."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from pydantic import Field

from tongban.serve import objections as o
from tongban.serve import reader
from tongban.serve.audit import pseudonymous
from tongban.serve.deps import ApproverDep, CallerDep, CtxDep, entity_of, note, reading, refused, writing
from tongban.serve.grants import Conflict, Missing, active_grants
from tongban.serve.schemas import Closed, Problem, RowId, UtcTime
from tongban.serve.sharing import PROVINCE_COLUMN, Forbidden, resolve
from tongban.serve.state.models import Objection

router = APIRouter(prefix="/objections", tags=["objections"], responses={401: {"model": Problem},
                                                                         403: {"model": Problem},
                                                                         404: {"model": Problem}})


class ObjectionIn(Closed):
    entity: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")
    key: str = Field(min_length=1, max_length=200)
    field: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")
    claimed_value: str | None = Field(default=None, max_length=2000)
    reason: str = Field(min_length=1, max_length=2000)


class ObjectionCreated(Closed):
    id: int
    status: str


class ResolutionIn(Closed):
    accepted: bool
    note: str = Field(min_length=1, max_length=2000)


class ObjectionOut(Closed):
    id: int
    entity: str
    key: str
    field: str
    province: str
    claimed_value: str | None
    reason: str
    status: str
    note: str | None
    created_at: UtcTime
    resolved_at: UtcTime | None
    seconds_to_resolution: float | None


class ObjectionList(Closed):
    objections: list[ObjectionOut]


def _out(obj: Objection) -> ObjectionOut:
    took = (obj.resolved_at - obj.created_at).total_seconds() if obj.resolved_at else None
    return ObjectionOut(id=obj.id, entity=obj.entity, key=obj.key, field=obj.field, province=obj.province,
                        claimed_value=obj.claimed_value, reason=obj.reason, status=obj.status, note=obj.note,
                        created_at=obj.created_at, resolved_at=obj.resolved_at, seconds_to_resolution=took)


@router.post("", response_model=ObjectionCreated, status_code=201, responses={422: {"model": Problem}})
def raise_objection(request: Request, body: ObjectionIn, ctx: CtxDep, consumer: CallerDep) -> ObjectionCreated:
    """Object to a value of a record you can read; its producing province's approvers see it."""
    ent = entity_of(body.entity, ctx)
    personal = bool(ent.pii)
    note(request, entity=ent.entity, field=body.field, key=pseudonymous(body.key) if personal else body.key)
    if body.field not in {f.name for f in ent.fields}:
        raise HTTPException(422, f"{body.field!r} is not a field of {ent.entity}")
    try:
        snap = reader.resolve(ctx.exchange_root, ent.entity)
        with reading(ctx) as s:
            grants = active_grants(s, consumer.id, ent.entity)
        access = resolve(ent, reader.columns_of(snap), grants, None)
    except (reader.NotFound, Forbidden) as exc:
        note(request, denied=str(exc))
        raise HTTPException(404, "no such record among the rows shared with you") from None
    row = reader.first_row(snap, [PROVINCE_COLUMN], {ent.key: body.key}, ent.key, access.provinces)
    if row is None:
        raise HTTPException(404, "no such record among the rows shared with you")
    with writing(ctx) as s:
        obj = o.raise_objection(s, consumer, ent.entity, body.key, body.field, row[PROVINCE_COLUMN],
                                body.claimed_value, body.reason, personal=personal)
    note(request, objection=obj.id, provinces=[obj.province])
    return ObjectionCreated(id=obj.id, status=obj.status)


@router.get("", response_model=ObjectionList,
            description="Your objections and, for an approver, the objections on your province's rows.")
def list_objections(ctx: CtxDep, consumer: CallerDep) -> ObjectionList:
    with reading(ctx) as s:
        return ObjectionList(objections=[_out(x) for x in o.visible_objections(s, consumer)])


@router.post("/{objection_id}/resolution", response_model=ObjectionOut, responses={409: {"model": Problem}})
def resolution(request: Request, objection_id: RowId, body: ResolutionIn, ctx: CtxDep,
               consumer: ApproverDep) -> ObjectionOut:
    note(request, objection=objection_id, accepted=body.accepted)
    try:
        with writing(ctx) as s:
            return _out(o.resolve(s, consumer, objection_id, body.accepted, body.note))
    except (Forbidden, Missing, Conflict) as exc:
        raise refused(request, exc) from None
