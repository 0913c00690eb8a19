"""D: applications, the producing province's decisions, grants (expiry, revocation), and the
authorization matrix: every endpoint × every kind of caller → the expected status."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from tests.serve.conftest import BIRTHS_PER_PROVINCE, certificate_no, make_uscc
from tongban.serve import state
from tongban.serve.state.models import Grant

BIRTHS = "/api/v1/entities/birth_registration/rows"


def _apply(served, token: str, provinces=("32",), fields=None, days=30) -> int:
    body = {"entity": "birth_registration", "provinces": list(provinces), "purpose": "出生一件事 联办", "days": days}
    if fields is not None:
        body["fields"] = fields
    r = served.post("/api/v1/applications", token, body)
    assert r.status_code == 201 and r.json()["status"] == "pending", r.text
    return r.json()["id"]


def _decide(served, token: str, app_id: int, approve: bool = True):
    return served.post(f"/api/v1/applications/{app_id}/decision", token, {"approve": approve, "reason": "依规"})


def _grant(served, consumer: str, approver: str, province: str, **kw) -> int:
    app_id = _apply(served, consumer, provinces=(province,), **kw)
    r = _decide(served, approver, app_id)
    assert r.status_code == 200, r.text
    grants = served.get("/api/v1/grants", consumer).json()["grants"]
    return max(g["id"] for g in grants if g["province"] == province)


def test_apply_approve_read_expire_and_revoke(served):
    sh = served.add("sh-health", "31")
    js = served.add("js-approver", "32", approver=True)
    zj = served.add("zj-approver", "33", approver=True)
    assert served.get(BIRTHS, sh).status_code == 403  # conditional: nothing without a grant
    app_id = _apply(served, sh, provinces=("32", "33"),
                    fields=["birth_id", "birth_date", "birth_certificate_number", "province_code"])
    pending = served.get("/api/v1/applications", js).json()["applications"]
    assert [a["id"] for a in pending] == [app_id] and pending[0]["consumer"] == "sh-health"
    assert _decide(served, js, app_id).status_code == 200
    assert _decide(served, js, app_id).status_code == 409  # one decision per province
    assert served.get("/api/v1/applications", js).json()["applications"] == []  # nothing awaits 32 now
    mine = served.get("/api/v1/applications", sh).json()["applications"][0]
    assert mine["status"] == "pending" and [d["approve"] for d in mine["decisions"]] == [True, None]
    assert _decide(served, zj, app_id, approve=False).json()["status"] == "decided"

    body = served.get(BIRTHS, sh, params={"province": "32"}).json()
    assert len(body["rows"]) == BIRTHS_PER_PROVINCE and {r["province_code"] for r in body["rows"]} == {"32"}
    # only the fields applied for (and provenance): no child name, no sex code
    assert set(body["rows"][0]) == {"birth_id", "birth_date", "birth_certificate_number_pseudonym",
                                    "birth_certificate_number_masked", "province_code", "source_id"}
    assert served.get(BIRTHS, sh, params={"province": "33"}).status_code == 403  # 33 said no
    assert len(served.get(BIRTHS, sh).json()["rows"]) == BIRTHS_PER_PROVINCE  # all granted provinces
    assert served.get(BIRTHS + "/birth_32_0002", sh).status_code == 200
    assert served.get(BIRTHS + "/birth_31_0002", sh).status_code == 404

    (grant,) = served.get("/api/v1/grants", sh).json()["grants"]
    assert grant["active"] and grant["province"] == "32"
    with state.session(served.url) as s:  # time passes
        s.execute(update(Grant).values(expires_at=state.utcnow() - timedelta(seconds=1)))
    assert served.get(BIRTHS, sh, params={"province": "32"}).status_code == 403
    assert served.get("/api/v1/grants", sh).json()["grants"][0]["active"] is False

    grant_id = _grant(served, sh, js, "32")
    assert served.get(BIRTHS, sh, params={"province": "32"}).status_code == 200
    assert served.client.delete(f"/api/v1/grants/{grant_id}", headers=served.auth(zj)).status_code == 403
    assert served.client.delete(f"/api/v1/grants/{grant_id}", headers=served.auth(js)).status_code == 200
    assert served.get(BIRTHS, sh, params={"province": "32"}).status_code == 403
    assert served.client.delete(f"/api/v1/grants/{grant_id}", headers=served.auth(js)).status_code == 409


def test_an_approver_never_decides_its_own_application_and_bad_applications_are_refused(served):
    js = served.add("js-approver", "32", approver=True)
    app_id = _apply(served, js, provinces=("32",))
    assert _decide(served, js, app_id).status_code == 403
    assert _decide(served, js, 999).status_code == 404
    bad = [{"entity": "birth_registration", "provinces": ["32"], "purpose": "x", "days": 0},
           {"entity": "birth_registration", "provinces": [], "purpose": "x", "days": 3},
           {"entity": "birth_registration", "provinces": ["3"], "purpose": "x", "days": 3},
           {"entity": "birth_registration", "fields": ["nope"], "provinces": ["32"], "purpose": "x", "days": 3},
           {"entity": "birth_registration", "provinces": ["32"], "purpose": "x", "days": 3, "extra": 1}]
    for body in bad:
        assert served.post("/api/v1/applications", js, body).status_code == 422, body
    assert served.post("/api/v1/applications", js, {"entity": "nonesuch", "provinces": ["32"], "purpose": "x",
                                                    "days": 3}).status_code == 404


CALLERS = ("no token", "unknown token", "consumer without grant", "grant for another province", "with grant",
           "expired grant", "approver of another province", "approver of the province")

# endpoint -> expected status per caller, in CALLERS order
MATRIX = {
    "GET /entities": (401, 401, 200, 200, 200, 200, 200, 200),
    "GET rows of 32": (401, 401, 403, 403, 200, 403, 403, 403),
    "GET rows (all granted)": (401, 401, 403, 200, 200, 403, 403, 403),
    "GET row of 32 by key": (401, 401, 403, 404, 200, 403, 403, 403),
    "POST /applications": (401, 401, 201, 201, 201, 201, 201, 201),
    "GET /applications": (401, 401, 200, 200, 200, 200, 200, 200),
    "POST decision on 32": (401, 401, 403, 403, 403, 403, 403, 200),
    "GET /grants": (401, 401, 200, 200, 200, 200, 200, 200),
    "DELETE a grant on 32": (401, 401, 403, 403, 403, 403, 403, 200),
    "GET verify licence": (401, 401, 200, 200, 200, 200, 200, 200),
    "GET verify birth": (401, 401, 200, 200, 200, 200, 200, 200),
    "GET /keys (public)": (200, 200, 200, 200, 200, 200, 200, 200),
    "POST /objections": (401, 401, 201, 201, 201, 201, 201, 201),
    "GET /objections": (401, 401, 200, 200, 200, 200, 200, 200),
    "POST resolution on 32": (401, 401, 403, 403, 403, 403, 403, 200),
}


OBJECTION = {"entity": "business_license", "key": "lic_32_0003", "field": "enterprise_name",
             "claimed_value": "企业32-03有限公司", "reason": "名称已变更"}


def test_authorization_matrix(served):
    js = served.add("js-approver", "32", approver=True)
    zj = served.add("zj-approver", "33", approver=True)
    tokens = {"no token": None, "unknown token": "x" * 43, "consumer without grant": served.add("c-none", "31"),
              "grant for another province": served.add("c-other", "31"), "with grant": served.add("c-granted", "31"),
              "expired grant": served.add("c-expired", "31"), "approver of another province": zj,
              "approver of the province": js}
    _grant(served, tokens["grant for another province"], zj, "33")
    _grant(served, tokens["with grant"], js, "32")
    expired = _grant(served, tokens["expired grant"], js, "32")
    with state.session(served.url) as s:
        s.execute(update(Grant).where(Grant.id == expired).values(expires_at=state.utcnow() - timedelta(days=1)))
    applicant = served.add("applicant", "34")
    holder = served.add("holder", "34")

    def call(endpoint: str, token: str | None) -> int:
        if endpoint == "GET /entities":
            return served.get("/api/v1/entities", token).status_code
        if endpoint == "GET rows of 32":
            return served.get(BIRTHS, token, params={"province": "32"}).status_code
        if endpoint == "GET rows (all granted)":
            return served.get(BIRTHS, token).status_code
        if endpoint == "GET row of 32 by key":
            return served.get(BIRTHS + "/birth_32_0001", token).status_code
        if endpoint == "POST /applications":
            return served.post("/api/v1/applications", token, {"entity": "birth_registration", "provinces": ["32"],
                                                               "purpose": "x", "days": 1}).status_code
        if endpoint == "GET /applications":
            return served.get("/api/v1/applications", token).status_code
        if endpoint == "POST decision on 32":
            return _decide(served, token, _apply(served, applicant)).status_code
        if endpoint == "GET /grants":
            return served.get("/api/v1/grants", token).status_code
        if endpoint == "DELETE a grant on 32":
            grant_id = _grant(served, holder, js, "32")
            return served.client.delete(f"/api/v1/grants/{grant_id}", headers=served.auth(token)).status_code
        if endpoint == "GET verify licence":
            return served.get(f"/api/v1/verify/business_license/{make_uscc('320102', 32005)}", token).status_code
        if endpoint == "GET verify birth":
            return served.get(f"/api/v1/verify/birth_certificate/{certificate_no('32', 1)}", token).status_code
        if endpoint == "GET /keys (public)":
            return served.get("/api/v1/keys", token).status_code
        if endpoint == "POST /objections":
            return served.post("/api/v1/objections", token, OBJECTION).status_code
        if endpoint == "GET /objections":
            return served.get("/api/v1/objections", token).status_code
        if endpoint == "POST resolution on 32":
            obj = served.post("/api/v1/objections", applicant, OBJECTION).json()["id"]
            return served.post(f"/api/v1/objections/{obj}/resolution", token, {"accepted": True, "note": "改"}).status_code
        raise AssertionError(endpoint)

    got = {endpoint: tuple(call(endpoint, tokens[c]) for c in CALLERS) for endpoint in MATRIX}
    assert got == MATRIX


def test_a_field_level_grant_adds_a_conditional_field_of_an_unconditional_entity(served):
    sh = served.add("sh-court", "31")
    js = served.add("js-approver", "32", approver=True)
    licences = "/api/v1/entities/business_license/rows"
    before = served.get(licences, sh, params={"province": "32", "limit": 1}).json()["rows"][0]
    assert not any(c.startswith("legal_representative") for c in before)
    r = served.post("/api/v1/applications", sh, {"entity": "business_license", "fields": ["legal_representative"],
                                                 "provinces": ["32"], "purpose": "诉讼送达", "days": 10})
    assert _decide(served, js, r.json()["id"]).status_code == 200
    after = served.get(licences, sh, params={"province": "32", "limit": 1}).json()["rows"][0]
    assert {"legal_representative_pseudonym", "legal_representative_masked"} <= set(after)
    assert set(after) - set(before) == {"legal_representative_pseudonym", "legal_representative_masked"}
    # other provinces, and all provinces at once, stay without it
    assert not any(c.startswith("legal_representative")
                   for c in served.get(licences, sh, params={"province": "33", "limit": 1}).json()["rows"][0])
    assert not any(c.startswith("legal_representative")
                   for c in served.get(licences, sh, params={"limit": 1}).json()["rows"][0])
