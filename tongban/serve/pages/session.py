"""Login to the pages with a consumer token (the same tokens as the API), kept in a signed session
cookie (Starlette's SessionMiddleware: HttpOnly, SameSite=Strict), with a per-session CSRF token that
every POST (login and logout included) must carry in a hidden field.

The cookie's secret is ``$TONGBAN_SESSION_SECRET`` or a key file created on first use (mode 0600)
under ``<build dir>/secrets/`` — never under the exchange, which consumers can read.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from fastapi import Request
from starlette.middleware.sessions import SessionMiddleware

from tongban.common.config import settings
from tongban.serve import state
from tongban.serve.state.models import Consumer

SECRET_ENV = "TONGBAN_SESSION_SECRET"
COOKIE = "tongban_session"
MAX_AGE = 8 * 3600  # a working day; log in again after


def secret_path() -> Path:
    return settings().build_dir / "secrets" / "session.key"


def session_secret() -> str:
    """The cookie-signing secret: from the environment, else the key file (created at 0600)."""
    value = os.environ.get(SECRET_ENV, "").strip()
    if value:
        return value
    path = secret_path()
    exchange = settings().exchange_dir.resolve()
    if path.resolve().is_relative_to(exchange):
        raise ValueError(f"the session secret must not live in the exchange ({exchange}); set ${SECRET_ENV}")
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first
        else:
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(secrets.token_urlsafe(48))
    return path.read_text(encoding="ascii").strip()


def add_session(app) -> None:
    app.add_middleware(SessionMiddleware, secret_key=session_secret(), session_cookie=COOKIE, max_age=MAX_AGE,
                       same_site="strict", https_only=False)


def csrf_token(request: Request) -> str:
    """This session's CSRF token (made on first use)."""
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def csrf_ok(request: Request, presented: str | None) -> bool:
    expected = request.session.get("csrf")
    return bool(expected and presented) and hmac.compare_digest(str(expected), str(presented))


def log_in(request: Request, consumer: Consumer) -> None:
    lang = request.session.get("lang")
    request.session.clear()  # a fresh session (and CSRF token) at login: no fixation
    request.session.update({"consumer_id": consumer.id, "csrf": secrets.token_urlsafe(32)})
    if lang:
        request.session["lang"] = lang


def log_out(request: Request) -> None:
    lang = request.session.get("lang")
    request.session.clear()
    if lang:
        request.session["lang"] = lang


def current_consumer(request: Request, url: str) -> Consumer | None:
    """The logged-in consumer, still active (a revoked consumer's session ends at its next request)."""
    consumer_id = request.session.get("consumer_id")
    if not isinstance(consumer_id, int):
        return None
    with state.session(url) as s:
        consumer = s.get(Consumer, consumer_id)
    if consumer is None or consumer.revoked_at is not None:
        request.session.pop("consumer_id", None)
        return None
    request.state.actor = consumer.name
    return consumer
