"""What a caller may read: the standard's sharing classes applied to a snapshot's columns and the
caller's grants.

A published column belongs to a standard field (``<field>_pseudonym`` / ``<field>_masked`` to their
personal field); provenance columns (source_id, run_id, ...) take the entity's class. ``unconditional``
columns go to every registered consumer, ``conditional`` ones only under an active grant for the row's
province that covers the field, ``none`` never row by row.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tongban.standards.models import Entity

PROVINCE_COLUMN = "province_code"
PII_SUFFIXES = ("_pseudonym", "_masked")


class Forbidden(PermissionError):
    """Known caller, not allowed (HTTP 403)."""


@dataclass(frozen=True)
class GrantView:
    """An active grant as the check needs it."""

    id: int
    province: str
    fields: frozenset[str] | None  # None: every field

    @classmethod
    def of(cls, grant) -> GrantView:
        fields = None if grant.fields is None else frozenset(json.loads(grant.fields))
        return cls(grant.id, grant.province, fields)


def field_of(entity: Entity, column: str) -> str | None:
    """The standard field a published column carries (None for provenance columns)."""
    names = {f.name for f in entity.fields}
    if column in names:
        return column
    for suffix in PII_SUFFIXES:
        base = column.removesuffix(suffix)
        if base != column and base in entity.pii:
            return base
    return None


def column_class(entity: Entity, column: str) -> str | None:
    field = field_of(entity, column)
    return entity.sharing_of(field) if field else entity.sharing


def _covers(grant: GrantView, entity: Entity, column: str) -> bool:
    field = field_of(entity, column)
    return grant.fields is None or field is None or field in grant.fields or field == entity.key


def visible_columns(entity: Entity, columns: Sequence[str], grants: Iterable[GrantView], province: str) -> list[str]:
    """The columns of ``province``'s rows the caller may read."""
    mine = [g for g in grants if g.province == province]
    out = []
    for c in columns:
        cls = column_class(entity, c)
        if cls == "unconditional" or (cls == "conditional" and any(_covers(g, entity, c) for g in mine)):
            out.append(c)
    return out


@dataclass(frozen=True)
class Access:
    provinces: tuple[str, ...] | None  # None: every province
    columns: tuple[str, ...]
    grants: tuple[int, ...]


def resolve(entity: Entity, columns: Sequence[str], grants: Sequence[GrantView], province: str | None) -> Access:
    """The provinces and columns a request may read, or :class:`Forbidden`."""
    if entity.sharing not in ("unconditional", "conditional"):
        raise Forbidden(f"{entity.entity} is not shared row by row")
    granted = sorted({g.province for g in grants})
    if province is not None:
        if entity.sharing == "conditional" and province not in granted:
            raise Forbidden(f"no active grant for {entity.entity} of province {province}")
        provinces: tuple[str, ...] | None = (province,)
        cols = visible_columns(entity, columns, grants, province)
    elif entity.sharing == "unconditional":
        provinces, cols = None, [c for c in columns if column_class(entity, c) == "unconditional"]
    else:
        if not granted:
            raise Forbidden(f"{entity.entity} is shared only with a grant: apply at POST /api/v1/applications")
        provinces = tuple(granted)
        per = [visible_columns(entity, columns, grants, p) for p in granted]
        cols = [c for c in per[0] if all(c in other for other in per[1:])]
    if entity.key not in cols:
        raise Forbidden(f"the key of {entity.entity} is not shared with this caller")
    used = tuple(sorted(g.id for g in grants if provinces is None or g.province in provinces))
    return Access(provinces, tuple(cols), used)
