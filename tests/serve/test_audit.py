"""B: every request and every change is appended to a hash chain; tampering is found and named;
nothing personal is written."""

from __future__ import annotations

import json
import sqlite3

from tests.serve.conftest import certificate_no
from tongban.cli import main
from tongban.serve import audit


def _db(served) -> str:
    return served.url.removeprefix("sqlite:///")


def _some_traffic(served) -> dict[str, str]:
    a = served.add("sh-civil", "31")
    b = served.add("js-approver", "32", approver=True)
    served.get("/api/v1/entities", a)
    served.get("/api/v1/entities/business_license/rows?limit=5", a)
    served.get(f"/api/v1/verify/birth_certificate/{certificate_no('32', 3)}", a)
    served.get("/api/v1/entities/birth_registration/rows", a)  # 403: no grant
    app_id = served.post("/api/v1/applications", a, {"entity": "birth_registration", "provinces": ["32"],
                                                      "purpose": "出生一件事", "days": 30}).json()["id"]
    served.post(f"/api/v1/applications/{app_id}/decision", b, {"approve": True, "reason": "ok"})
    served.get("/api/v1/entities/birth_registration/rows?province=32", a)
    served.get("/api/v1/entities/birth_registration/rows/birth_32_0001", a)
    return {"a": a, "b": b}


def test_the_chain_holds_and_a_tampered_entry_is_named(served, capsys):
    tokens = _some_traffic(served)
    checked, broken = audit.verify(url=served.url)
    assert broken is None and checked >= 10
    assert main(["audit", "verify"]) == 0 and f"intact: {checked} entries" in capsys.readouterr().out

    entries = audit.tail(100, url=served.url)
    kinds = [(e["kind"], e["payload"].get("change") or e["payload"]["endpoint"]) for e in entries]
    assert ("change", "consumer_added") in kinds and ("change", "application_decided") in kinds
    rows = [e for e in entries if e["payload"].get("endpoint") == "GET /api/v1/entities/{entity}/rows"]
    granted = [e for e in rows if e["payload"]["outcome"] == 200 and e["payload"]["entity"] == "birth_registration"]
    (read,) = granted
    assert read["actor"] == "sh-civil" and read["payload"]["provinces"] == ["32"] and read["payload"]["grants"]
    assert read["payload"]["rows"] == 12 and "birth_certificate_number_pseudonym" in read["payload"]["fields"]
    assert any(e["payload"]["outcome"] == 403 for e in rows)
    assert not any(t in json.dumps(entries) for t in tokens.values())

    with sqlite3.connect(_db(served)) as con:  # an operator edits one stored entry
        payload = con.execute("SELECT payload FROM audit WHERE seq = 5").fetchone()[0]
        con.execute("UPDATE audit SET payload = ? WHERE seq = 5", (payload.replace('"outcome":200', '"outcome":404'),))
    assert audit.verify(url=served.url)[1].seq == 5
    assert main(["audit", "verify"]) == 1
    assert "broken at entry 5" in capsys.readouterr().out


def test_a_removed_or_rehashed_entry_is_named(served):
    _some_traffic(served)
    with sqlite3.connect(_db(served)) as con:
        con.execute("DELETE FROM audit WHERE seq = 4")
    assert str(audit.verify(url=served.url)[1]).startswith("audit entry 4: missing")
    with sqlite3.connect(_db(served)) as con:
        # re-inserted with a consistent hash of its own: the next entry no longer links to it
        con.execute("INSERT INTO audit SELECT 4, at, kind, actor, '{}', prev_hash, ? FROM audit WHERE seq = 3",
                    (audit.entry_hash("0" * 64, 4, "x", "request", None, "{}"),))
    assert audit.verify(url=served.url)[1].seq == 4


def test_nothing_personal_reaches_the_audit(served):
    _some_traffic(served)
    served.get("/api/v1/entities/birth_registration/rows?child_sex_code=1", served.add("zj", "33"))
    with sqlite3.connect(_db(served)) as con:
        dumped = "\n".join(con.iterdump())
    assert certificate_no("32", 3) not in dumped  # the verified number
    assert "birth_32_0001" not in dumped  # the key of a personal record
    assert "孩子" not in dumped and "法人" not in dumped  # no row values
    assert "hmac:" in dumped
