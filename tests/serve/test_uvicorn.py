"""The README's walk for a newcomer, against a real `tongban serve` (uvicorn) on a free localhost port:
register consumers, read unconditional data, apply for another province's births, have its approver
approve, read them, verify a licence (and its signature, offline), raise an objection, /docs offline,
and the audit chain intact afterwards."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.serve.conftest import BIRTHS_PER_PROVINCE, KEY, build_warehouse, make_uscc, publish
from tongban.serve import signing

TONGBAN = [sys.executable, "-m", "tongban.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def walk_env(tmp_path) -> dict[str, str]:
    env = {**os.environ, "TONGBAN_EXCHANGE_DIR": str(tmp_path / "exchange"), "TONGBAN_BUILD_DIR": str(tmp_path / "build"),
           "TONGBAN_PSEUDONYM_KEY": KEY, "TONGBAN_STATE_URL": f"sqlite:///{tmp_path / 'state.sqlite'}"}
    build_warehouse(tmp_path / "warehouse.duckdb")
    publish(tmp_path / "exchange", tmp_path / "warehouse.duckdb")
    return env


def _tongban(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*TONGBAN, *args], env=env, capture_output=True, text=True, timeout=120)


def _token(env: dict[str, str], *args: str) -> str:
    done = _tongban(env, "consumer", "add", *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[-1]


@pytest.fixture
def server(walk_env, tmp_path):
    port = _free_port()
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen([*TONGBAN, "serve", "--port", str(port)], env=walk_env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):  # up to ~60 s to start on a busy machine; no assertion on the time
            if proc.poll() is not None:
                raise AssertionError(f"tongban serve exited: {Path(log.name).read_text()}")
            try:
                if httpx.get(f"{base}/openapi.json", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_the_newcomers_walk_over_real_http(walk_env, server):
    sh = _token(walk_env, "sh-health", "--province", "31")
    js = _token(walk_env, "js-approver", "--province", "32", "--approver")
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

    verified = _tongban(walk_env, "audit", "verify")
    assert verified.returncode == 0 and "intact" in verified.stdout
    assert "application_decided" in _tongban(walk_env, "audit", "tail", "-n", "50").stdout
