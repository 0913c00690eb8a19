"""The README's walk for a newcomer, every step through the real CLI and a real uvicorn: `tongban
run` (Airflow, dbt, DuckDB, GX) on small synthetic samples, `tongban consumer add`, `tongban serve`,
read unconditional licences, apply for another province's births, that province's approver
approves, read them (every published column has a sharing class; no raw personal value in any
answer), verify certificates the province delivered, raise an objection and find it in the
province's next feedback package."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import httpx

from bench.serve import serving
from tests.serve.conftest import token_from_cli
from tests.workdirs import work_env

ROWS = 40
KEY = "tongban-serve-real-run-pseudonym-key-0123456789"
TONGBAN = [sys.executable, "-m", "tongban.cli"]


def _delivered(inbox: Path, name: str) -> list[dict]:
    """js's delivery of ``name`` (GB18030 CSV), without the rows its answer key says are defective."""
    with (inbox / "js" / f"{name}.answer_key.csv").open(encoding="utf-8", newline="") as fh:
        defective = {int(r["row_number"]) for r in csv.DictReader(fh)}
    with (inbox / "js" / f"{name}.csv").open(encoding="gb18030", newline="") as fh:
        return [r for n, r in enumerate(csv.DictReader(fh), start=1) if n not in defective]


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """The README's walk up to the first curl: ``tongban sample``, ``tongban run``, ``tongban consumer
    add`` (a consumer of 上海, an approver of 江苏) and ``tongban serve`` (uvicorn, a free localhost port)."""
    work = tmp_path_factory.mktemp("serve-real-run")
    inbox = work / "inbox"
    env = {**os.environ, **work_env(work, inbox, KEY), "TONGBAN_STATE_URL": f"sqlite:///{work / 'state.sqlite'}"}
    for entity in ("births", "licenses"):
        subprocess.run([*TONGBAN, "sample", entity, "--rows", str(ROWS), "--out", str(inbox)], env=env, check=True,
                       capture_output=True, timeout=300)
    done = subprocess.run([*TONGBAN, "run", "--entity", "birth_registration", "--entity", "business_license"],
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    tokens = {"sh": token_from_cli(env, "sh-health", "--province", "31"),
              "js": token_from_cli(env, "js-approver", "--province", "32", "--approver")}
    with serving(env, work / "serve.log") as base, httpx.Client(base_url=base, timeout=120) as client:
        yield {"client": client, "tokens": tokens, "inbox": inbox, "work": work, "env": env}


def _h(real, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {real['tokens'][who]}"}


def test_every_published_column_has_a_class_and_a_grant_reads_a_provinces_births(real):
    client = real["client"]
    licences = client.get("/api/v1/entities/business_license/rows", headers=_h(real, "sh"),
                          params={"province": "32", "limit": 5})  # unconditional: no grant needed
    assert licences.status_code == 200 and len(licences.json()["rows"]) == 5
    assert {r["province_code"] for r in licences.json()["rows"]} == {"32"}
    assert client.get("/api/v1/entities/birth_registration/rows", headers=_h(real, "sh"),
                      params={"province": "32"}).status_code == 403  # conditional: not before the grant
    entities = {e["entity"]: e for e in client.get("/api/v1/entities", headers=_h(real, "sh")).json()["entities"]}
    births = entities["birth_registration"]
    assert births["snapshot"]["version"] == 1 and all(f["sharing"] for f in births["fields"])
    assert {c for f in births["fields"] for c in f["columns"]} >= {"mother_id_number_pseudonym", "birth_date"}

    app_id = client.post("/api/v1/applications", headers=_h(real, "sh"), json={
        "entity": "birth_registration", "provinces": ["32"], "purpose": "出生一件事", "days": 7}).json()["id"]
    awaiting = client.get("/api/v1/applications", headers=_h(real, "js")).json()["applications"]
    assert [(a["id"], a["status"]) for a in awaiting] == [(app_id, "pending")]  # what 江苏's approver sees
    assert client.post(f"/api/v1/applications/{app_id}/decision", headers=_h(real, "js"),
                       json={"approve": True, "reason": "ok"}).status_code == 200
    pages, cursor = [], None
    while True:
        r = client.get("/api/v1/entities/birth_registration/rows", headers=_h(real, "sh"),
                       params={"province": "32", "limit": 15, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200
        pages.append(r.text)
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    rows = [row for page in pages for row in json.loads(page)["rows"]]
    assert len(rows) == len({r["birth_id"] for r in rows}) >= ROWS // 2
    assert {r["province_code"] for r in rows} == {"32"} and "services_requested" in rows[0]
    csv_page = client.get("/api/v1/entities/birth_registration/rows", headers=_h(real, "sh"),
                          params={"province": "32", "format": "csv", "limit": 10000}).text
    raw = {v for r in _delivered(real["inbox"], "births") for k, v in r.items()
           if k in ("CSYXZMBH", "XM", "MQXM", "MQSFZH", "FQSFZH", "LXDH") and v}
    leaked = [v for v in raw if any(v in text for text in [*pages, csv_page])]
    assert leaked == []


def test_certificates_a_province_delivered_verify_across_provinces(real):
    client = real["client"]
    for row in _delivered(real["inbox"], "births")[:3]:
        r = client.get(f"/api/v1/verify/birth_certificate/{row['CSYXZMBH']}", headers=_h(real, "sh"))
        body = r.json()
        assert body["found"] and body["valid"] and body["issuing_province"] == "32", row["CSYXZMBH"][:3]
        assert row["CSYXZMBH"] not in r.text
    for row in _delivered(real["inbox"], "licenses")[:3]:
        body = client.get(f"/api/v1/verify/business_license/{row['TYSHXYDM']}", headers=_h(real, "sh")).json()
        assert body["found"] and body["valid"] and body["issuing_province"] == "32" and body["status"]


def test_open_objections_reach_the_producers_next_feedback_in_its_own_column_names(real):
    client = real["client"]
    rows = client.get("/api/v1/entities/business_license/rows", headers=_h(real, "sh"),
                      params={"province": "32", "limit": 2}).json()["rows"]
    ids = []
    for row, field in zip(rows, ("enterprise_name", "status_code"), strict=True):
        r = client.post("/api/v1/objections", headers=_h(real, "sh"), json={
            "entity": "business_license", "key": row["license_id"], "field": field, "claimed_value": "=1+1",
            "reason": "与登记机关记录不符"})
        assert r.status_code == 201
        ids.append(r.json()["id"])
    seen = client.get("/api/v1/objections", headers=_h(real, "js")).json()["objections"]
    assert sorted(o["id"] for o in seen) == ids  # 江苏's approver sees the objections on its rows
    assert client.post(f"/api/v1/objections/{ids[1]}/resolution", headers=_h(real, "js"),
                       json={"accepted": False, "note": "核实无误"}).status_code == 200

    done = subprocess.run([*TONGBAN, "run", "--entity", "business_license"], env=real["env"], capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (path,) = (real["work"] / "feedback" / "js").glob("*__objections.csv")
    assert f"open objections for the producer: {path}" in done.stdout
    with path.open(encoding="utf-8", newline="") as fh:
        (line,) = list(csv.DictReader(fh))  # the resolved one is not sent
    assert line["objection_id"] == str(ids[0]) and line["column"] == "QYMC" and line["field"] == "enterprise_name"
    assert int(line["source_row_number"]) == rows[0]["source_row_number"] and line["claimed_value"] == "'=1+1"
    assert not list((real["work"] / "feedback").glob("sh/*__objections.csv"))
