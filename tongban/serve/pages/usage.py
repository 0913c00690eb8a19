"""``/usage`` (approvers only; others get 403): reads per consumer and entity, and refused requests,
from the audit log (what it records: endpoints, entities, outcomes — never values)."""

from __future__ import annotations

import json

from fastapi import APIRouter
from sqlalchemy import select

from tongban.serve import state
from tongban.serve.deps import note
from tongban.serve.pages.base import PageDep
from tongban.serve.pages.render import Section, Table
from tongban.serve.state.models import AuditEntry

router = APIRouter()
REFUSED_SHOWN = 200


@router.get("/usage")
def usage(p: PageDep):
    t = p.t
    if not p.user.approver:
        note(p.request, denied="not an approver")
        return p.respond("usage", [Section(t("approvers_only"))], form=False, status_code=403)
    with state.session(p.ctx.state_url) as s:
        entries = list(s.scalars(select(AuditEntry).where(AuditEntry.kind == "request").order_by(AuditEntry.seq)))
    reads: dict[tuple[str, str], int] = {}
    refused = []
    for e in entries:
        payload = json.loads(e.payload)
        day = e.at[:10]
        if (p.f.start and day < p.f.start.isoformat()) or (p.f.end and day > p.f.end.isoformat()):
            continue
        entity = payload.get("entity")
        if p.f.entity and entity != p.f.entity:
            continue
        outcome = payload.get("outcome")
        if isinstance(outcome, int) and outcome >= 400:
            refused.append([e.at[:19], e.actor or "—", payload.get("endpoint", ""), str(outcome)])
        elif entity and str(payload.get("endpoint", "")).startswith("GET /api/"):
            key = (e.actor or "—", entity)
            reads[key] = reads.get(key, 0) + 1
    return p.respond("usage", [
        Section(t("reads"), [], [Table("reads", [t("consumer"), t("entity"), t("count")],
                                       [[c, t.entity(ent), str(n)] for (c, ent), n in sorted(reads.items())])]),
        Section(t("refused"), [], [Table("refused", [t("time"), t("consumer"), t("endpoint"), t("outcome")],
                                         refused[::-1][:REFUSED_SHOWN])]),
    ], entities=True, provinces=False)  # the audit log's reads are per consumer and entity, not per province
