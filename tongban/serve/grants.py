"""Applications (共享申请), the producing provinces' decisions and the grants they create.

The approver of province P decides for P's data (谁产生、谁负责): one decision per province asked,
never on its own application. An approval creates a grant of the applicant for (entity, P, fields)
that expires after the application's days; a grant can be revoked by its holder or by an approver of
its province. Every change is written to the audit log in the same transaction.
"""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from tongban.serve import audit, state
from tongban.serve.sharing import Forbidden, GrantView
from tongban.serve.state.models import Application, Consumer, Decision, Grant


class Conflict(RuntimeError):
    """HTTP 409."""


class Missing(LookupError):
    """HTTP 404."""


def active_grants(s: Session, consumer_id: int, entity: str) -> list[GrantView]:
    now = state.utcnow()
    rows = s.scalars(select(Grant).where(Grant.consumer_id == consumer_id, Grant.entity == entity,
                                         Grant.revoked_at.is_(None), Grant.expires_at > now))
    return [GrantView.of(g) for g in rows]


def apply(s: Session, consumer: Consumer, entity: str, fields: list[str] | None, provinces: list[str],
          purpose: str, days: int) -> Application:
    app = Application(consumer_id=consumer.id, entity=entity, fields=None if fields is None else json.dumps(sorted(set(fields))),
                      purpose=purpose, days=days, status="pending", created_at=state.utcnow())
    s.add(app)
    s.flush()
    for p in sorted(set(provinces)):
        s.add(Decision(application_id=app.id, province=p))
    audit.append(s, "change", consumer.name, {"change": "application_made", "application": app.id, "entity": entity,
                                              "fields": fields, "provinces": sorted(set(provinces)), "days": days})
    return app


def decide(s: Session, approver: Consumer, application_id: int, approve: bool, reason: str) -> Application:
    app = s.get(Application, application_id)
    if app is None:
        raise Missing(f"no application {application_id}")
    if not approver.approver:
        raise Forbidden("only an approver of the province whose data is asked for decides")
    if app.consumer_id == approver.id:
        raise Forbidden("a consumer never decides its own application")
    decision = s.scalar(select(Decision).where(Decision.application_id == app.id, Decision.province == approver.province))
    if decision is None:
        raise Forbidden(f"application {app.id} asks nothing of province {approver.province}")
    if decision.approve is not None:
        raise Conflict(f"province {approver.province} has decided application {app.id} already")
    now = state.utcnow()
    decision.approve, decision.reason, decision.approver_id, decision.decided_at = approve, reason, approver.id, now
    grant_id = None
    if approve:
        grant = Grant(consumer_id=app.consumer_id, application_id=app.id, entity=app.entity, province=decision.province,
                      fields=app.fields, created_at=now, expires_at=now + timedelta(days=app.days))
        s.add(grant)
        s.flush()
        grant_id = grant.id
    s.flush()
    if all(d.approve is not None for d in s.scalars(select(Decision).where(Decision.application_id == app.id))):
        app.status = "decided"
    audit.append(s, "change", approver.name, {"change": "application_decided", "application": app.id,
                                              "province": decision.province, "approve": approve, "grant": grant_id})
    return app


def decisions_of(s: Session, app: Application) -> list[Decision]:
    return list(s.scalars(select(Decision).where(Decision.application_id == app.id).order_by(Decision.province)))


def visible_applications(s: Session, caller: Consumer) -> list[Application]:
    """The caller's own applications and, for an approver, those awaiting its province's decision."""
    awaiting = select(Decision.application_id).where(Decision.province == caller.province, Decision.approve.is_(None))
    cond = Application.consumer_id == caller.id
    if caller.approver:
        cond = or_(cond, Application.id.in_(awaiting))
    return list(s.scalars(select(Application).where(cond).order_by(Application.id)))


def grants_of(s: Session, caller: Consumer) -> list[Grant]:
    cond = Grant.consumer_id == caller.id
    if caller.approver:
        cond = or_(cond, Grant.province == caller.province)
    return list(s.scalars(select(Grant).where(cond).order_by(Grant.id)))


def revoke_grant(s: Session, caller: Consumer, grant_id: int) -> Grant:
    grant = s.get(Grant, grant_id)
    if grant is None:
        raise Missing(f"no grant {grant_id}")
    if grant.consumer_id != caller.id and not (caller.approver and caller.province == grant.province):
        raise Forbidden("only the grant's holder or an approver of its province revokes it")
    if grant.revoked_at is not None:
        raise Conflict(f"grant {grant_id} is revoked already")
    grant.revoked_at = state.utcnow()
    audit.append(s, "change", caller.name, {"change": "grant_revoked", "grant": grant.id})
    return grant
