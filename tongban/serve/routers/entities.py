"""GET /entities, /entities/{entity}/rows and /entities/{entity}/rows/{key}: the current (or a kept)
snapshot, only the provinces and fields the caller's sharing classes and grants allow."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response

from tongban.serve import reader
from tongban.serve.audit import pseudonymous
from tongban.serve.deps import CallerDep, Context, CtxDep, entity_of, note, reading
from tongban.serve.grants import active_grants
from tongban.serve.schemas import EntityInfo, EntityList, FieldInfo, Problem, Row, RowsPage, SnapshotInfo
from tongban.serve.sharing import Access, Forbidden, field_of, resolve
from tongban.serve.state.models import Consumer
from tongban.standards.models import Entity

router = APIRouter(tags=["entities"], responses={401: {"model": Problem}, 403: {"model": Problem},
                                                  404: {"model": Problem}})

RESERVED = {"province", "as_of", "limit", "cursor", "format"}
MEDIA = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}


def jsonable(value: object) -> object:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value


@router.get("/entities", response_model=EntityList)
def list_entities(ctx: CtxDep, _: CallerDep) -> EntityList:
    out = []
    for entity in ctx.entities.values():
        if entity.sharing in (None, "none"):
            continue
        try:
            snap = reader.resolve(ctx.exchange_root, entity.entity)
            columns = reader.columns_of(snap)
            info = SnapshotInfo(**reader.snapshot_info(snap))
        except reader.NotFound:
            columns, info = [], None
        fields = [FieldInfo(name=f.name, sharing=entity.sharing_of(f.name),
                            columns=[c for c in columns if field_of(entity, c) == f.name]) for f in entity.fields]
        out.append(EntityInfo(entity=entity.entity, key=[entity.key], sharing=entity.sharing, fields=fields, snapshot=info))
    return EntityList(entities=out)


def _access(request: Request, ctx: Context, consumer: Consumer, entity: Entity, snap, province: str | None) -> Access:
    with reading(ctx) as s:
        grants = active_grants(s, consumer.id, entity.entity)
    try:
        access = resolve(entity, reader.columns_of(snap), grants, province)
    except Forbidden as exc:
        note(request, denied=str(exc))
        raise HTTPException(403, str(exc)) from None
    note(request, provinces=list(access.provinces) if access.provinces else "all", fields=list(access.columns),
         grants=list(access.grants), snapshot=snap.version)
    return access


def _snapshot(ctx: Context, entity: str, as_of: str | None, version: int | None = None):
    try:
        return reader.resolve(ctx.exchange_root, entity, as_of, version)
    except reader.NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except reader.BadRequest as exc:
        raise HTTPException(400, str(exc)) from None


@router.get("/entities/{entity}/rows", response_model=RowsPage,
            responses={200: {"content": {MEDIA["csv"]: {}, MEDIA["parquet"]: {}}}, 400: {"model": Problem}},
            description="Rows in key order, `limit` per page; follow `next_cursor` (null on the last page). "
                        "Any other query parameter `<column>=<value>` filters on a column you may read.")
def rows(request: Request, response: Response, entity: str, ctx: CtxDep, consumer: CallerDep,
         province: Annotated[str | None, Query(pattern=r"^[1-9][0-9]$")] = None,
         as_of: Annotated[str | None, Query(description="a kept snapshot: version (v3) or ISO time")] = None,
         limit: Annotated[int, Query(ge=1, le=reader.MAX_LIMIT)] = 1000, cursor: str | None = None,
         format: Literal["json", "csv", "parquet"] = "json"):
    ent = entity_of(entity, ctx)
    note(request, entity=entity)
    after = None
    if cursor is not None:
        try:
            version, after = reader.decode_cursor(cursor)
        except reader.BadRequest as exc:
            raise HTTPException(400, str(exc)) from None
        snap = _snapshot(ctx, entity, None, version)  # a cursor keeps its snapshot: pages never mix versions
    else:
        snap = _snapshot(ctx, entity, as_of)
    access = _access(request, ctx, consumer, ent, snap, province)
    filters = {k: v for k, v in request.query_params.items() if k not in RESERVED}
    all_columns = reader.columns_of(snap)
    for column in filters:
        if column not in all_columns:
            raise HTTPException(400, f"unknown column {column!r} of {entity}")
        if column not in access.columns:
            raise HTTPException(403, f"column {column!r} is not shared with this caller")
    personal = bool(ent.pii)
    note(request, filter={k: pseudonymous(v) if personal else v for k, v in filters.items()}, format=format)
    if after is not None:
        note(request, after=pseudonymous(after) if personal else after)
    info = reader.snapshot_info(snap)
    headers = {"X-Snapshot-Version": str(snap.version)}
    if format == "parquet":
        body, count, next_cursor = reader.parquet_bytes(snap, access.columns, ent.key, access.provinces, filters,
                                                        after, limit)
        note(request, rows=count)
        if next_cursor:
            headers["X-Next-Cursor"] = next_cursor
        return Response(body, media_type=MEDIA["parquet"], headers=headers)
    columns, found, next_cursor = reader.read_page(snap, access.columns, ent.key, access.provinces, filters, after, limit)
    note(request, rows=len(found))
    if next_cursor:
        headers["X-Next-Cursor"] = next_cursor
    if format == "csv":
        return Response(reader.to_csv(columns, found), media_type=MEDIA["csv"], headers=headers)
    response.headers.update(headers)  # the JSON page names its snapshot in the header too, as CSV and Parquet do
    page = [{c: jsonable(v) for c, v in zip(columns, r, strict=True)} for r in found]
    return RowsPage(rows=page, next_cursor=next_cursor, snapshot=SnapshotInfo(**info))


@router.get("/entities/{entity}/rows/{key}", response_model=Row, responses={400: {"model": Problem}})
def row(request: Request, response: Response, entity: str, key: str, ctx: CtxDep, consumer: CallerDep,
        as_of: Annotated[str | None, Query(description="a kept snapshot: version (v3) or ISO time")] = None
        ) -> Row:
    ent = entity_of(entity, ctx)
    note(request, entity=entity, key=pseudonymous(key) if ent.pii else key)
    snap = _snapshot(ctx, entity, as_of)
    access = _access(request, ctx, consumer, ent, snap, None)
    found = reader.first_row(snap, access.columns, {ent.key: key}, ent.key, access.provinces)
    note(request, rows=0 if found is None else 1)
    if found is None:
        raise HTTPException(404, f"no {entity} with this key among the rows shared with you")
    response.headers["X-Snapshot-Version"] = str(snap.version)
    return Row(row={c: jsonable(v) for c, v in found.items()}, snapshot=SnapshotInfo(**reader.snapshot_info(snap)))
