"""共享申请 and 权限互授: POST/GET /applications, POST /applications/{id}/decision (an approver of the
province asked), GET /grants and DELETE /grants/{id}."""

from __future__ import annotations

import json

from fastapi import APIRouter, HTTPException, Request
from sqlalchemy.orm import Session

from tongban.serve import grants as g
from tongban.serve.deps import ApproverDep, CallerDep, CtxDep, entity_of, note, reading, refused, writing
from tongban.serve.schemas import (
    ApplicationCreated, ApplicationIn, ApplicationList, ApplicationOut, DecisionIn, DecisionOut, GrantList, GrantOut,
    Problem, RowId,
)
from tongban.serve.sharing import Forbidden
from tongban.serve.state import utcnow
from tongban.serve.state.models import Application, Consumer, Grant

router = APIRouter(tags=["applications"], responses={401: {"model": Problem}, 403: {"model": Problem},
                                                      404: {"model": Problem}})


def _out(s: Session, app: Application) -> ApplicationOut:
    decisions = g.decisions_of(s, app)
    return ApplicationOut(
        id=app.id, consumer=s.get(Consumer, app.consumer_id).name, entity=app.entity,
        fields=None if app.fields is None else json.loads(app.fields), provinces=[d.province for d in decisions],
        purpose=app.purpose, days=app.days, status=app.status, created_at=app.created_at,
        decisions=[DecisionOut(province=d.province, approve=d.approve, reason=d.reason, decided_at=d.decided_at)
                   for d in decisions])


@router.post("/applications", response_model=ApplicationCreated, status_code=201,
             responses={409: {"model": Problem}, 422: {"model": Problem}})
def apply(request: Request, body: ApplicationIn, ctx: CtxDep, consumer: CallerDep) -> ApplicationCreated:
    ent = entity_of(body.entity, ctx)
    note(request, entity=body.entity, provinces=body.provinces, fields=body.fields)
    if ent.sharing in (None, "none"):
        raise refused(request, Forbidden(f"{ent.entity} is not shared row by row"))
    names = {f.name for f in ent.fields}
    unknown = sorted(set(body.fields or ()) - names)
    if unknown:
        raise HTTPException(422, f"not fields of {ent.entity}: {', '.join(unknown)}")
    never = sorted(f for f in body.fields or () if ent.sharing_of(f) == "none")
    if never:
        raise refused(request, Forbidden(f"never shared row by row: {', '.join(never)}"))
    bad = [p for p in body.provinces if not (len(p) == 2 and p.isdigit() and p[0] != "0")]
    if bad:
        raise HTTPException(422, "provinces: two-digit province codes, e.g. 32")
    with writing(ctx) as s:
        app = g.apply(s, consumer, ent.entity, body.fields, body.provinces, body.purpose, body.days)
    note(request, application=app.id)
    return ApplicationCreated(id=app.id, status="pending")


@router.get("/applications", response_model=ApplicationList,
            description="Your applications and, for an approver, those awaiting your province's decision.")
def list_applications(ctx: CtxDep, consumer: CallerDep) -> ApplicationList:
    with reading(ctx) as s:
        return ApplicationList(applications=[_out(s, a) for a in g.visible_applications(s, consumer)])


@router.post("/applications/{application_id}/decision", response_model=ApplicationOut,
             responses={409: {"model": Problem}})
def decide(request: Request, application_id: RowId, body: DecisionIn, ctx: CtxDep,
           consumer: ApproverDep) -> ApplicationOut:
    note(request, application=application_id, approve=body.approve)
    try:
        with writing(ctx) as s:
            return _out(s, g.decide(s, consumer, application_id, body.approve, body.reason))
    except (Forbidden, g.Missing, g.Conflict) as exc:
        raise refused(request, exc) from None


def _grant_out(s: Session, grant: Grant) -> GrantOut:
    now = utcnow()
    return GrantOut(id=grant.id, consumer=s.get(Consumer, grant.consumer_id).name, entity=grant.entity,
                    province=grant.province, fields=None if grant.fields is None else json.loads(grant.fields),
                    created_at=grant.created_at, expires_at=grant.expires_at, revoked_at=grant.revoked_at,
                    active=grant.revoked_at is None and grant.expires_at > now)


@router.get("/grants", response_model=GrantList,
            description="Your grants and, for an approver, the grants on your province's data.")
def list_grants(ctx: CtxDep, consumer: CallerDep) -> GrantList:
    with reading(ctx) as s:
        return GrantList(grants=[_grant_out(s, x) for x in g.grants_of(s, consumer)])


@router.delete("/grants/{grant_id}", response_model=GrantOut, responses={409: {"model": Problem}})
def revoke(request: Request, grant_id: RowId, ctx: CtxDep, consumer: CallerDep) -> GrantOut:
    note(request, grant=grant_id)
    try:
        with writing(ctx) as s:
            return _grant_out(s, g.revoke_grant(s, consumer, grant_id))
    except (Forbidden, g.Missing, g.Conflict) as exc:
        raise refused(request, exc) from None
