"""The audit log: every request and every change of consumers, grants, applications and objections,
appended as one entry that carries the hash of the entry before it.

An entry's hash is ``sha256(prev_hash + "\\n" + canonical JSON of {seq, at, kind, actor, payload})``
(canonical: keys sorted, no spaces, UTF-8), so changing, removing or reordering any stored entry breaks
the chain at that entry: :func:`verify` names the first one that does not match.

Nothing personal is written: no row values ever; record keys and filter values of an entity with
personal fields are written as keyed pseudonyms (:func:`pseudonymous`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tongban.common import pii
from tongban.common.config import settings
from tongban.exchange.signing import canonical
from tongban.serve import state
from tongban.serve.state.models import AuditEntry

GENESIS = "0" * 64
LOCK = threading.Lock()  # one appender at a time in this process; the seq primary key across processes


def entry_hash(prev_hash: str, seq: int, at: str, kind: str, actor: str | None, payload: str) -> str:
    body = canonical({"seq": seq, "at": at, "kind": kind, "actor": actor, "payload": json.loads(payload)})
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


def pseudonymous(value: object) -> str:
    """A keyed pseudonym (HMAC with the exchange's pseudonym key) for a personal record's key or a
    filter value: the same value gives the same text, the text does not give the value."""
    key = pii.pseudonym_key(settings().build_dir)
    return "hmac:" + hmac.new(key, str(value).encode(), hashlib.sha256).hexdigest()[:32]


def append(session: Session, kind: str, actor: str | None, payload: Mapping[str, object]) -> AuditEntry:
    """Append one entry in ``session``'s transaction (commits with it)."""
    last = session.scalar(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1))
    seq = 1 if last is None else last.seq + 1
    prev = GENESIS if last is None else last.hash
    at = state.utcnow().isoformat(timespec="microseconds") + "Z"
    body = canonical(dict(payload))
    entry = AuditEntry(seq=seq, at=at, kind=kind, actor=actor, payload=body, prev_hash=prev,
                       hash=entry_hash(prev, seq, at, kind, actor, body))
    session.add(entry)
    session.flush()
    return entry


def record(kind: str, actor: str | None, payload: Mapping[str, object], *, url: str | None = None) -> int:
    """Append one entry in its own transaction (retried when another process took the same seq)."""
    for attempt in range(20):
        try:
            with LOCK, state.session(url) as s:
                return append(s, kind, actor, payload).seq
        except IntegrityError:
            if attempt == 19:
                raise
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Break:
    seq: int
    problem: str

    def __str__(self) -> str:
        return f"audit entry {self.seq}: {self.problem}"


def verify(*, url: str | None = None) -> tuple[int, Break | None]:
    """(entries checked, the first entry that does not match or None)."""
    prev, expected_seq, checked = GENESIS, 1, 0
    with state.session(url) as s:
        for e in s.scalars(select(AuditEntry).order_by(AuditEntry.seq)):
            if e.seq != expected_seq:
                return checked, Break(expected_seq, f"missing (the next stored entry is {e.seq})")
            if e.prev_hash != prev:
                return checked, Break(e.seq, "does not carry the hash of the entry before it")
            try:
                recomputed = entry_hash(e.prev_hash, e.seq, e.at, e.kind, e.actor, e.payload)
            except ValueError:
                return checked, Break(e.seq, "its payload is not JSON")
            if not hmac.compare_digest(recomputed, e.hash):
                return checked, Break(e.seq, "its content does not match its hash")
            prev, expected_seq, checked = e.hash, e.seq + 1, checked + 1
    return checked, None


def tail(n: int = 20, *, url: str | None = None) -> list[dict]:
    with state.session(url) as s:
        rows = list(s.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(max(n, 0))))
    return [{"seq": e.seq, "at": e.at, "kind": e.kind, "actor": e.actor, "payload": json.loads(e.payload),
             "hash": e.hash} for e in reversed(rows)]
