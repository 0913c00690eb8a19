"""The committee's gate thresholds per source: the entity's ``gate:`` section, which a mapping's own
``gate:`` (with its ``reason:``) overrides for its source, key by key.

:func:`threshold_for` is what the dashboard's /quality page and the run ask; :func:`breaches` says
which limits a delivery's counts are over, in tongban's words (shares and limits, never a value of
the delivery).
"""

from __future__ import annotations

from dataclasses import dataclass

from tongban.standards.load import Standards

#: the origin of a limit nobody set: a share can never be over it
NO_LIMIT = "no limit set"
ENTITY_DEFAULT = "entity default"


def _override(std: Standards, entity: str, source_id: str):
    m = next((m for m in std.mappings if m.entity == entity and m.source_id == source_id), None)
    return m.gate if m is not None else None


def _origin(source_id: str) -> str:
    return f"{source_id} override"


def threshold_for(std: Standards, entity: str, source_id: str) -> tuple[float, str]:
    """(max_quarantine_share, where it comes from) for a source's delivery of ``entity``: the
    mapping's override (origin ``'<source_id> override'``), else the entity's default (``'entity
    default'``), else 1.0 (``'no limit set'``)."""
    own = _override(std, entity, source_id)
    if own is not None and own.max_quarantine_share is not None:
        return own.max_quarantine_share, _origin(source_id)
    ent = std.entities.get(entity)
    if ent is not None and ent.gate is not None and ent.gate.max_quarantine_share is not None:
        return ent.gate.max_quarantine_share, ENTITY_DEFAULT
    return 1.0, NO_LIMIT


def rule_limits_for(std: Standards, entity: str, source_id: str) -> dict[str, tuple[float, str]]:
    """Per reason: (max share of the delivery's rows quarantined with it, where it comes from)."""
    ent = std.entities.get(entity)
    out = {r: (x, ENTITY_DEFAULT) for r, x in (ent.gate.max_share_by_rule if ent and ent.gate else {}).items()}
    own = _override(std, entity, source_id)
    out.update({r: (x, _origin(source_id)) for r, x in (own.max_share_by_rule if own else {}).items()})
    return dict(sorted(out.items()))


def override_reason(std: Standards, entity: str, source_id: str) -> str | None:
    own = _override(std, entity, source_id)
    return own.reason if own is not None else None


@dataclass(frozen=True)
class Breach:
    """One limit a delivery is over."""

    what: str  # "quarantine share" | "share quarantined for unmapped_code"
    share: float
    limit: float
    origin: str

    def __str__(self) -> str:
        return (f"{self.what} {self.share:.1%} over the limit {self.limit:.1%} ({self.origin}) "
                f"by {(self.share - self.limit) * 100:.1f} points")


def breaches(std: Standards, entity: str, source_id: str, delivered: int, quarantined: int,
             by_reason: dict[str, int]) -> list[Breach]:
    """Every limit of the source's delivery of ``entity`` its counts are over (none for no rows)."""
    if not delivered:
        return []
    out = []
    limit, origin = threshold_for(std, entity, source_id)
    if quarantined / delivered > limit:
        out.append(Breach("quarantine share", quarantined / delivered, limit, origin))
    for reason, (cap, cap_origin) in rule_limits_for(std, entity, source_id).items():
        share = by_reason.get(reason, 0) / delivered
        if share > cap:
            out.append(Breach(f"share quarantined for {reason}", share, cap, cap_origin))
    return out
