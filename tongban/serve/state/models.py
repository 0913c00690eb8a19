"""The platform's own state as SQLAlchemy 2 typed models. Schema changes are Alembic migrations
(``migrations/versions``): a change here needs a new revision there."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Consumer(Base):
    """A registered department of a province; an approver decides for its province's data."""

    __tablename__ = "consumers"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    province: Mapped[str] = mapped_column(String(2))
    approver: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class Token(Base):
    """A bearer token, kept only as its sha256 (hex)."""

    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    consumer_id: Mapped[int] = mapped_column(ForeignKey("consumers.id"))
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class Application(Base):
    """共享申请: a consumer asks for an entity's rows (some fields, or all) of some provinces."""

    __tablename__ = "applications"
    id: Mapped[int] = mapped_column(primary_key=True)
    consumer_id: Mapped[int] = mapped_column(ForeignKey("consumers.id"))
    entity: Mapped[str] = mapped_column(String(63))
    fields: Mapped[str | None] = mapped_column(Text)  # JSON list; None: every field
    purpose: Mapped[str] = mapped_column(Text)
    days: Mapped[int]
    status: Mapped[str] = mapped_column(String(16))  # pending | decided
    created_at: Mapped[datetime]


class Decision(Base):
    """One province asked in an application, and its approver's decision (one per province)."""

    __tablename__ = "decisions"
    __table_args__ = (UniqueConstraint("application_id", "province"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"))
    province: Mapped[str] = mapped_column(String(2))
    approve: Mapped[bool | None]  # None: not decided yet
    reason: Mapped[str | None] = mapped_column(Text)
    approver_id: Mapped[int | None] = mapped_column(ForeignKey("consumers.id"))
    decided_at: Mapped[datetime | None]


class Grant(Base):
    """The right to read an entity's rows of one province (some fields or all) until it expires."""

    __tablename__ = "grants"
    __table_args__ = (Index("ix_grants_consumer_entity", "consumer_id", "entity"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    consumer_id: Mapped[int] = mapped_column(ForeignKey("consumers.id"))
    application_id: Mapped[int | None] = mapped_column(ForeignKey("applications.id"))
    entity: Mapped[str] = mapped_column(String(63))
    province: Mapped[str] = mapped_column(String(2))
    fields: Mapped[str | None] = mapped_column(Text)  # JSON list; None: every field
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class Objection(Base):
    """异议: a consumer says a published value is wrong; the producing province resolves it."""

    __tablename__ = "objections"
    id: Mapped[int] = mapped_column(primary_key=True)
    consumer_id: Mapped[int] = mapped_column(ForeignKey("consumers.id"))
    entity: Mapped[str] = mapped_column(String(63))
    key: Mapped[str] = mapped_column(String(200))
    field: Mapped[str] = mapped_column(String(63))
    province: Mapped[str] = mapped_column(String(2))
    claimed_value: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # open | accepted | rejected
    note: Mapped[str | None] = mapped_column(Text)
    resolver_id: Mapped[int | None] = mapped_column(ForeignKey("consumers.id"))
    created_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]


class AuditEntry(Base):
    """One entry of the audit chain: ``hash`` = sha256 over ``prev_hash`` and the entry's canonical JSON."""

    __tablename__ = "audit"
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16))  # request | change
    actor: Mapped[str | None] = mapped_column(String(100))
    payload: Mapped[str] = mapped_column(Text)  # canonical JSON
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
