"""The dashboard pages, served by the same app as the API (tongban.serve.app): server-rendered
Jinja2 templates, charts drawn to inline SVG on the server, CSS from the package, no JavaScript.

Pages need a login (a consumer token, once, kept in a signed session cookie); each one takes its
filters from the query string, so a view can be bookmarked. See docs/dashboard.md.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from tongban.serve.pages import auth, domains, overview, quality, resources, session, usage
from tongban.serve.pages.base import LoginNeeded
from tongban.serve.pages.data import BadFilter

STATIC = Path(__file__).resolve().parent.parent / "static"
PAGES = ("/login", "/logout", "/quality", "/births", "/licenses", "/resources", "/usage")


def is_page(path: str) -> bool:
    """A page request (audited like an API request); static files are not."""
    return path == "/" or any(path == p or path.startswith(p + "/") for p in PAGES)


def mount(app: FastAPI) -> None:
    """Add the pages, their static files and the session cookie to ``app``."""
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    for module in (auth, overview, domains, resources, quality, usage):
        app.include_router(module.router, include_in_schema=False)

    @app.exception_handler(LoginNeeded)
    async def to_login(request, exc: LoginNeeded):
        return RedirectResponse(exc.location, status_code=303)

    @app.exception_handler(BadFilter)
    async def bad_filter(request, exc: BadFilter):
        request.state.audit["denied"] = str(exc)
        return HTMLResponse(f"<!doctype html><title>400</title><p>{_escape(str(exc))}</p>", status_code=400)

    session.add_session(app)


def _escape(text: str) -> str:
    from markupsafe import escape

    return str(escape(text))
