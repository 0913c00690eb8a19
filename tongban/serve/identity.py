"""Consumers and their bearer tokens (身份核验).

A token is ``secrets.token_urlsafe(32)`` (32 random bytes), shown once when the consumer is added and
stored only as its sha256; a presented token is hashed and compared with ``hmac.compare_digest``.
Every change is written to the audit log in the same transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.serve import audit, state
from tongban.serve.state.models import Consumer, Token

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
PROVINCE = re.compile(r"[1-9][0-9]")


class IdentityError(ValueError):
    exit_code = 1


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _check(name: str, province: str | None = None) -> None:
    if not NAME.fullmatch(name or ""):
        raise IdentityError(f"invalid consumer name {name!r}: 1-100 of [A-Za-z0-9_.-], starting with a letter or digit")
    if province is not None and not PROVINCE.fullmatch(province):
        raise IdentityError(f"invalid province {province!r}: the two-digit GB/T 2260 province code, e.g. 32")


def add_consumer(name: str, province: str, *, approver: bool = False, url: str | None = None) -> str:
    """Register a consumer and return its token (the only time it is ever available)."""
    _check(name, province)
    token = secrets.token_urlsafe(32)
    with audit.LOCK, state.session(url) as s:
        if s.scalar(select(Consumer).where(Consumer.name == name)) is not None:
            raise IdentityError(f"consumer {name!r} exists already (names are never reused)")
        now = state.utcnow()
        consumer = Consumer(name=name, province=province, approver=approver, created_at=now)
        s.add(consumer)
        s.flush()
        s.add(Token(consumer_id=consumer.id, sha256=token_hash(token), created_at=now))
        audit.append(s, "change", None, {"change": "consumer_added", "consumer": name, "province": province,
                                         "approver": approver})
    return token


def revoke_consumer(name: str, *, url: str | None = None) -> None:
    _check(name)
    with audit.LOCK, state.session(url) as s:
        consumer = s.scalar(select(Consumer).where(Consumer.name == name))
        if consumer is None:
            raise IdentityError(f"no consumer {name!r}")
        if consumer.revoked_at is not None:
            raise IdentityError(f"consumer {name!r} is revoked already")
        now = state.utcnow()
        consumer.revoked_at = now
        for token in s.scalars(select(Token).where(Token.consumer_id == consumer.id, Token.revoked_at.is_(None))):
            token.revoked_at = now
        audit.append(s, "change", None, {"change": "consumer_revoked", "consumer": name})


def list_consumers(*, url: str | None = None) -> list[dict]:
    with state.session(url) as s:
        return [{"name": c.name, "province": c.province, "approver": c.approver,
                 "created_at": c.created_at.isoformat(timespec="seconds"),
                 "revoked_at": c.revoked_at.isoformat(timespec="seconds") if c.revoked_at else None}
                for c in s.scalars(select(Consumer).order_by(Consumer.name))]


def authenticate(session: Session, token: str | None) -> Consumer | None:
    """The active consumer holding ``token``, or None (no, unknown or revoked token)."""
    if not token:
        return None
    presented = token_hash(token)
    row = session.scalar(select(Token).where(Token.sha256 == presented))
    if row is None or not hmac.compare_digest(row.sha256, presented) or row.revoked_at is not None:
        return None
    consumer = session.get(Consumer, row.consumer_id)
    if consumer is None or consumer.revoked_at is not None:
        return None
    return consumer
