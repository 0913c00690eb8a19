"""A: the state database (Alembic-migrated, never in the exchange), consumers and bearer tokens."""

from __future__ import annotations

import sqlite3

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tongban.cli import main
from tongban.serve import identity, state
from tongban.serve.state.models import Base


def test_the_migrations_build_exactly_the_models(tmp_path):
    eng = state.engine(f"sqlite:///{tmp_path / 's.sqlite'}")
    with eng.connect() as con:
        assert compare_metadata(MigrationContext.configure(con), Base.metadata) == []


def test_default_state_lives_under_the_build_dir_never_the_exchange(tmp_path, monkeypatch):
    monkeypatch.delenv("TONGBAN_STATE_URL", raising=False)
    monkeypatch.setenv("TONGBAN_BUILD_DIR", str(tmp_path / "build"))
    assert state.state_url() == f"sqlite:///{tmp_path / 'build' / 'state' / 'serve.sqlite'}"
    monkeypatch.setenv("TONGBAN_EXCHANGE_DIR", str(tmp_path / "exchange"))
    with pytest.raises(ValueError, match="must not live in the exchange"):
        state.engine(f"sqlite:///{tmp_path / 'exchange' / 'state.sqlite'}")


def test_consumer_add_prints_the_token_alone_on_its_last_line_and_stores_only_its_hash(tmp_path, monkeypatch, capsys):
    db = tmp_path / "state.sqlite"
    monkeypatch.setenv("TONGBAN_STATE_URL", f"sqlite:///{db}")
    assert main(["consumer", "add", "js-health", "--province", "32"]) == 0
    token = capsys.readouterr().out.rstrip("\n").splitlines()[-1]
    assert len(token) >= 43 and " " not in token  # token_urlsafe(32): 32 random bytes
    with sqlite3.connect(db) as con:
        stored = [r[0] for r in con.execute("SELECT sha256 FROM tokens")]
        dumped = "\n".join(con.iterdump())
    assert stored == [identity.token_hash(token)] and token not in dumped
    assert main(["consumer", "add", "js-health", "--province", "32"]) == 1  # names are never reused
    assert main(["consumer", "add", "bad name", "--province", "32"]) == 1
    assert main(["consumer", "list"]) == 0
    assert "js-health  province 32  consumer" in capsys.readouterr().out


def test_unknown_missing_and_revoked_tokens_are_401_and_audited(served, capsys, monkeypatch):
    token = served.add("zj-market", "33")
    assert served.get("/api/v1/entities", token).status_code == 200
    assert served.get("/api/v1/entities", None).status_code == 401
    r = served.get("/api/v1/entities", "not-a-token")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert main(["consumer", "revoke", "zj-market"]) == 0
    assert served.get("/api/v1/entities", token).status_code == 401
    assert main(["consumer", "revoke", "zj-market"]) == 1
    capsys.readouterr()
    assert main(["audit", "tail", "-n", "4"]) == 0
    tail = capsys.readouterr().out
    assert tail.count('"outcome": 401') == 3  # no token, an unknown token, a revoked consumer's token
    assert '"change": "consumer_revoked"' in tail
