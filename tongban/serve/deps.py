"""The dependencies every route shares: the state session, the caller (bearer token → 401), the
standard's entities and the exchange root, and the request's audit record."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from tongban.serve import audit, state
from tongban.serve.grants import Missing
from tongban.serve.identity import authenticate
from tongban.serve.sharing import Forbidden
from tongban.serve.state.models import Consumer
from tongban.standards.models import Entity

bearer = HTTPBearer(auto_error=False, description="the token `tongban consumer add` printed")


@dataclass(frozen=True)
class Context:
    exchange_root: Path
    entities: dict[str, Entity]
    state_url: str


def context(request: Request) -> Context:
    return request.app.state.context


CtxDep = Annotated[Context, Depends(context)]


@contextmanager
def reading(ctx: Context) -> Iterator[Session]:
    """A session for a route, committed before the route returns (so before the request's audit entry)."""
    with state.session(ctx.state_url) as s:
        yield s


@contextmanager
def writing(ctx: Context) -> Iterator[Session]:
    """A session whose changes append to the audit chain: one appender at a time in this process."""
    with audit.LOCK, state.session(ctx.state_url) as s:
        yield s


def note(request: Request, **values: object) -> None:
    """Add to what the audit log records of this request."""
    request.state.audit.update(values)


def caller(request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
           ctx: CtxDep) -> Consumer:
    """The consumer presenting the bearer token; 401 for none, an unknown or a revoked one."""
    with state.session(ctx.state_url) as s:
        consumer = authenticate(s, creds.credentials if creds else None)
    if consumer is None:
        note(request, denied="no token" if creds is None else "unknown or revoked token")
        raise HTTPException(401, "a valid bearer token is needed (tongban consumer add)",
                            headers={"WWW-Authenticate": "Bearer"})
    request.state.actor = consumer.name
    return consumer


CallerDep = Annotated[Consumer, Depends(caller)]


def approver(request: Request, consumer: CallerDep) -> Consumer:
    if not consumer.approver:
        note(request, denied="not an approver")
        raise HTTPException(403, "only an approver acts for its province")
    return consumer


ApproverDep = Annotated[Consumer, Depends(approver)]


def refused(request: Request, exc: Exception) -> HTTPException:
    """The HTTP answer to a refusal of the state's rules (403 / 404 / 409), noted for the audit."""
    status = 403 if isinstance(exc, Forbidden) else 404 if isinstance(exc, Missing) else 409
    note(request, denied=str(exc))
    return HTTPException(status, str(exc))


def entity_of(name: str, ctx: Context) -> Entity:
    found = ctx.entities.get(name)
    if found is None:
        raise HTTPException(404, f"no entity {name!r} in the standard")
    return found
