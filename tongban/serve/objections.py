"""异议反馈: a consumer says a published value is wrong; the approvers of the producing province see
it and resolve it; the objector sees its status; time to resolution is kept. Every change is written
to the audit log in the same transaction (a personal record's key only as a pseudonym; the claimed
value never)."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from tongban.serve import audit, state
from tongban.serve.grants import Conflict, Missing
from tongban.serve.sharing import Forbidden
from tongban.serve.state.models import Consumer, Objection


def raise_objection(s: Session, consumer: Consumer, entity: str, key: str, field: str, province: str,
                    claimed_value: str | None, reason: str, *, personal: bool) -> Objection:
    obj = Objection(consumer_id=consumer.id, entity=entity, key=key, field=field, province=province,
                    claimed_value=claimed_value, reason=reason, status="open", created_at=state.utcnow())
    s.add(obj)
    s.flush()
    audit.append(s, "change", consumer.name, {"change": "objection_raised", "objection": obj.id, "entity": entity,
                                              "key": audit.pseudonymous(key) if personal else key, "field": field,
                                              "province": province})
    return obj


def visible_objections(s: Session, caller: Consumer) -> list[Objection]:
    """The caller's own objections and, for an approver, those on its province's rows."""
    cond = Objection.consumer_id == caller.id
    if caller.approver:
        cond = or_(cond, Objection.province == caller.province)
    return list(s.scalars(select(Objection).where(cond).order_by(Objection.id)))


def resolve(s: Session, approver: Consumer, objection_id: int, accepted: bool, note: str) -> Objection:
    obj = s.get(Objection, objection_id)
    if obj is None:
        raise Missing(f"no objection {objection_id}")
    if not approver.approver or approver.province != obj.province:
        raise Forbidden(f"only an approver of province {obj.province} resolves objections on its rows")
    if obj.consumer_id == approver.id:
        raise Forbidden("an objection is never resolved by its own objector")
    if obj.status != "open":
        raise Conflict(f"objection {obj.id} is resolved already")
    obj.status = "accepted" if accepted else "rejected"
    obj.note, obj.resolver_id, obj.resolved_at = note, approver.id, state.utcnow()
    audit.append(s, "change", approver.name, {"change": "objection_resolved", "objection": obj.id,
                                              "accepted": accepted})
    return obj


def open_objections(s: Session, province: str) -> list[Objection]:
    return list(s.scalars(select(Objection).where(Objection.province == province, Objection.status == "open")
                          .order_by(Objection.id)))
