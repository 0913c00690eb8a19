"""GET/POST /login (a consumer token in the field ``token``) and POST /logout, both CSRF-checked."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import PlainTextResponse, RedirectResponse

from tongban.serve import state
from tongban.serve.deps import note
from tongban.serve.identity import authenticate
from tongban.serve.pages import session
from tongban.serve.pages.render import TEMPLATES, Words, lang_href, language, link

router = APIRouter()


def _safe_next(target: str | None) -> str:
    """Only a local page path (no open redirect to another site)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _login_page(request: Request, error: str | None, status_code: int, next_path: str):
    words = Words(request.app.state.standards, language(request))
    return TEMPLATES.TemplateResponse(request, "login.html", {
        "t": words, "lang": words.lang, "page": "login", "title": words("login"), "user": None, "error": error,
        "csrf": session.csrf_token(request), "next": next_path, "lang_href": lang_href(request, words.lang),
        "link": lambda path, **kw: link(request, path, **kw)}, status_code=status_code)


@router.get("/login")
def login_form(request: Request, next: str | None = None):
    return _login_page(request, None, 200, _safe_next(next))


@router.post("/login")
def login(request: Request, token: Annotated[str, Form()] = "", csrf: Annotated[str, Form()] = "",
          next: Annotated[str, Form()] = "/"):
    words = Words(request.app.state.standards, language(request))
    if not session.csrf_ok(request, csrf):
        note(request, denied="csrf")
        return _login_page(request, words("csrf_failed"), 403, _safe_next(next))
    with state.session(request.app.state.context.state_url) as s:
        consumer = authenticate(s, token.strip())
    if consumer is None:
        note(request, denied="unknown or revoked token")
        return _login_page(request, words("login_failed"), 401, _safe_next(next))
    request.state.actor = consumer.name
    session.log_in(request, consumer)
    return RedirectResponse(link(request, _safe_next(next)), status_code=303)


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form()] = ""):
    if not session.csrf_ok(request, csrf):
        note(request, denied="csrf")
        return PlainTextResponse("the form expired: reload the page and try again", status_code=403)
    consumer_id = request.session.get("consumer_id")
    if consumer_id is not None:
        note(request, consumer_id=consumer_id)
    session.log_out(request)
    return RedirectResponse(link(request, "/login"), status_code=303)
