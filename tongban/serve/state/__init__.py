"""Where the served exchange keeps its state, and the engine onto it.

``TONGBAN_STATE_URL`` (any SQLAlchemy URL, e.g. ``postgresql+psycopg://...``) or, by default, a SQLite
file ``<build dir>/state/serve.sqlite`` — never under ``exchange/`` (consumers can read that) and never
in the warehouse. The schema is created and migrated by Alembic on first use in a process.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from tongban.common.config import settings

STATE_URL_ENV = "TONGBAN_STATE_URL"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"

_lock = threading.Lock()
_engines: dict[str, Engine] = {}


def state_url() -> str:
    value = os.environ.get(STATE_URL_ENV, "").strip()
    if value:
        return value
    path = settings().build_dir / "state" / "serve.sqlite"
    return f"sqlite:///{path}"


def utcnow() -> datetime:
    """Now in UTC, naive (what every DateTime column holds: SQLite keeps no zone)."""
    return datetime.now(UTC).replace(tzinfo=None)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA journal_mode=WAL")  # readers (token checks) never wait for the audit's writer
    cursor.close()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")


def engine(url: str | None = None) -> Engine:
    """The engine for ``url`` (default :func:`state_url`), migrated on first use in this process."""
    url = url or state_url()
    with _lock:
        found = _engines.get(url)
        if found is not None:
            return found
        if url.startswith("sqlite:///"):
            path = Path(url.removeprefix("sqlite:///"))
            if str(path) not in ("", ":memory:"):
                exchange = settings().exchange_dir.resolve()
                if path.resolve().is_relative_to(exchange):
                    raise ValueError(f"the state database must not live in the exchange ({exchange}): "
                                     f"consumers can read that; set ${STATE_URL_ENV} elsewhere")
                path.parent.mkdir(parents=True, exist_ok=True)
        eng = create_engine(url)
        if eng.dialect.name == "sqlite":
            event.listen(eng, "connect", _sqlite_pragmas)
        migrate(eng)
        _engines[url] = eng
        return eng


@contextmanager
def session(url: str | None = None) -> Iterator[Session]:
    """A session committed at the end of the block (rolled back on an error)."""
    factory = sessionmaker(engine(url), expire_on_commit=False)
    with factory.begin() as s:
        yield s
