"""F: 异议 — raised on a record the objector can read, seen and resolved by the producing province's
approvers, status and time to resolution visible to the objector."""

from __future__ import annotations

import sqlite3

OBJ = "/api/v1/objections"


def test_an_objection_goes_to_the_producing_province_and_back(served):
    sh = served.add("sh-market", "31")
    js = served.add("js-approver", "32", approver=True)
    zj = served.add("zj-approver", "33", approver=True)
    r = served.post(OBJ, sh, {"entity": "business_license", "key": "lic_32_0003", "field": "status_code",
                              "claimed_value": "revoked", "reason": "已注销"})
    assert r.status_code == 201 and r.json()["status"] == "open"
    obj_id = r.json()["id"]
    (seen,) = served.get(OBJ, js).json()["objections"]
    assert seen["province"] == "32" and seen["claimed_value"] == "revoked" and seen["status"] == "open"
    assert served.get(OBJ, zj).json()["objections"] == []  # not 33's row
    assert served.post(f"{OBJ}/{obj_id}/resolution", zj, {"accepted": True, "note": "x"}).status_code == 403
    assert served.post(f"{OBJ}/{obj_id}/resolution", sh, {"accepted": True, "note": "x"}).status_code == 403
    done = served.post(f"{OBJ}/{obj_id}/resolution", js, {"accepted": True, "note": "下次交付更正"})
    assert done.status_code == 200 and done.json()["status"] == "accepted"
    assert served.post(f"{OBJ}/{obj_id}/resolution", js, {"accepted": False, "note": "x"}).status_code == 409
    (mine,) = served.get(OBJ, sh).json()["objections"]
    assert mine["status"] == "accepted" and mine["seconds_to_resolution"] >= 0 and mine["note"] == "下次交付更正"


def test_objections_need_a_readable_record_and_keep_personal_keys_out_of_the_audit(served):
    sh = served.add("sh-civil", "31")
    js = served.add("js-approver", "32", approver=True)
    births = {"entity": "birth_registration", "key": "birth_32_0004", "field": "child_name",
              "claimed_value": "王小明", "reason": "姓名有误"}
    assert served.post(OBJ, sh, births).status_code == 404  # no grant: not a record sh can read
    assert served.post(OBJ, sh, {**births, "entity": "business_license", "key": "nope", "field": "uscc"}).status_code == 404
    assert served.post(OBJ, sh, {**births, "field": "nope"}).status_code == 422
    app_id = served.post("/api/v1/applications", sh, {"entity": "birth_registration", "provinces": ["32"],
                                                      "purpose": "x", "days": 5}).json()["id"]
    served.post(f"/api/v1/applications/{app_id}/decision", js, {"approve": True, "reason": "ok"})
    assert served.post(OBJ, sh, births).status_code == 201
    with sqlite3.connect(served.url.removeprefix("sqlite:///")) as con:
        audit = "\n".join(r[0] for r in con.execute("SELECT payload FROM audit"))
    assert "birth_32_0004" not in audit and "王小明" not in audit and "objection_raised" in audit
