"""The FastAPI app of the served exchange (FastAPI's bigger-applications layout: one APIRouter per
resource under routers/, dependencies in deps).

Every request is written to the audit log once it is answered (who, endpoint, what the route noted,
the status); the route's path template is recorded, never the raw path (it may hold a key or a
certificate number). Errors reach clients as ``{"detail": ...}`` without stack traces.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi_offline import FastAPIOffline
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from tongban import exchange
from tongban.common.config import settings
from tongban.serve import audit, pages, signing, state
from tongban.serve.deps import Context
from tongban.serve.routers import applications, entities, objections, verify
from tongban.standards.load import load_standards

log = logging.getLogger("tongban.serve")


def create_app(*, exchange_root: Path | None = None, state_url: str | None = None,
               standards_dir: Path | None = None) -> FastAPI:
    url = state_url or state.state_url()
    state.engine(url)  # created and migrated before the first request
    signing.current_key()  # created on first use, before the first answer
    std = load_standards(standards_dir or settings().standards_dir)
    # /docs and /redoc with their scripts and styles served from the package: they work with no internet
    app = FastAPIOffline(title="tongban served exchange", version="1",
                  description="The region's shared exchange for consumers: read what the standard's sharing "
                              "classes and your grants allow, apply for grants, verify certificates. "
                              "Every request is audited.")
    app.state.context = Context(exchange_root=Path(exchange_root or exchange.default_exchange_root()),
                                entities=dict(std.entities), state_url=url)
    for module in (entities, applications, verify, objections):
        app.include_router(module.router, prefix="/api/v1")
    app.include_router(verify.keys_router, prefix="/api/v1")
    app.state.standards = std  # the pages' labels, code lists and mappings
    pages.mount(app)

    @app.middleware("http")
    async def audit_every_request(request: Request, call_next):
        request.state.audit = {}
        request.state.actor = None
        try:
            response = await call_next(request)
            outcome = response.status_code
        except Exception:
            log.exception("request failed")
            response, outcome = JSONResponse({"detail": "internal error"}, status_code=500), 500
        route = request.scope.get("route")
        if request.url.path.startswith("/api/") or pages.is_page(request.url.path):  # pages: filters by name only
            payload = {"endpoint": f"{request.method} {getattr(route, 'path', '(no such endpoint)')}",
                       "outcome": outcome, **request.state.audit}
            await run_in_threadpool(audit.record, "request", request.state.actor, payload, url=url)
        return response

    return app
