"""The README's walk for a newcomer, against a real `tongban serve` (uvicorn) on a free localhost port:
register consumers, read unconditional data, apply for another province's births, have its approver
approve, read them, verify a licence (and its signature, offline), raise an objection, /docs offline,
and the audit chain intact afterwards."""

from __future__ import annotations

import httpx

from tests.serve.conftest import BIRTHS_PER_PROVINCE, make_uscc, token_from_cli, tongban_cli
from tongban.exchange import signing

def test_the_newcomers_walk_over_real_http(walk_env, server):
    sh = token_from_cli(walk_env, "sh-health", "--province", "31")
    js = token_from_cli(walk_env, "js-approver", "--province", "32", "--approver")
    with httpx.Client(base_url=f"{server}/api/v1", timeout=30) as http:
        def auth(token: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {token}"}

        licences = http.get("/entities/business_license/rows", params={"province": "32"}, headers=auth(sh))
        assert licences.status_code == 200 and licences.json()["snapshot"]["version"] == 1
        assert http.get("/entities/business_license/rows", headers={}).status_code == 401

        births = "/entities/birth_registration/rows"
        assert http.get(births, params={"province": "32"}, headers=auth(sh)).status_code == 403
        app = http.post("/applications", headers=auth(sh), json={"entity": "birth_registration", "provinces": ["32"],
                                                                  "purpose": "出生一件事 跨省通办", "days": 30})
        assert app.status_code == 201
        (pending,) = http.get("/applications", headers=auth(js)).json()["applications"]
        decided = http.post(f"/applications/{pending['id']}/decision", headers=auth(js),
                            json={"approve": True, "reason": "依协议"})
        assert decided.status_code == 200
        rows = http.get(births, params={"province": "32"}, headers=auth(sh)).json()["rows"]
        assert len(rows) == BIRTHS_PER_PROVINCE and "child_name_masked" in rows[0]

        answer = http.get(f"/verify/business_license/{make_uscc('320102', 32007)}", headers=auth(sh)).json()
        assert answer["found"] and answer["issuing_province"] == "32"
        assert signing.check(answer, http.get("/keys").json()["keys"])

        objection = http.post("/objections", headers=auth(sh), json={
            "entity": "business_license", "key": "lic_32_0007", "field": "status_code", "reason": "已注销"})
        assert objection.status_code == 201
        assert [o["id"] for o in http.get("/objections", headers=auth(js)).json()["objections"]] == [objection.json()["id"]]

    docs = httpx.get(f"{server}/docs")
    assert docs.status_code == 200 and "/static-offline-docs/swagger-ui-bundle.js" in docs.text and "cdn" not in docs.text
    bundle = httpx.get(f"{server}/static-offline-docs/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and len(bundle.content) > 100_000

    verified = tongban_cli(walk_env, "audit", "verify")
    assert verified.returncode == 0 and "intact" in verified.stdout
    assert "application_decided" in tongban_cli(walk_env, "audit", "tail", "-n", "50").stdout
