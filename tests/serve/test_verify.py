"""E: 证据互认 — a licence or a birth certificate verified across provinces, check digits first, no
personal data in the answer."""

from __future__ import annotations

from tests.serve.conftest import certificate_no, make_uscc
from tongban.exchange import signing
from tongban.common.validators import gb32100_check_char, gb32100_problem

VERIFY = "/api/v1/verify"


def test_a_licence_is_verified_with_its_status_and_issuing_province(served):
    token = served.add("sh-market", "31")
    r = served.get(f"{VERIFY}/business_license/{make_uscc('330102', 33001)}", token).json()
    assert r["found"] and r["valid"] and r["status"] == "revoked" and r["issuing_province"] == "33"
    assert r["snapshot"]["entity"] == "business_license" and r["snapshot"]["version"] == 1
    assert set(r) == {"found", "valid", "status", "issuing_province", "snapshot", "signature"}
    lower = served.get(f"{VERIFY}/business_license/{make_uscc('320102', 32004).lower()}", token).json()
    assert lower["found"] and lower["status"] == "active"
    unknown = served.get(f"{VERIFY}/business_license/{make_uscc('320102', 77777)}", token).json()
    assert unknown == {**unknown, "found": False, "valid": True, "status": None}


def test_an_invalid_number_is_not_valid_without_a_lookup(served):
    token = served.add("sh-market", "31")
    good = make_uscc("320102", 32004)
    bad_check = good[:-1] + ("0" if good[-1] != "0" else "1")
    for number in (bad_check, "123", "91320102MA1XXXXXXX"):
        r = served.get(f"{VERIFY}/business_license/{number}", token).json()
        assert r.pop("signature")["key_id"]
        assert r == {"found": False, "valid": False, "status": None, "issuing_province": None, "snapshot": None}
    # a letter registration authority (A/N/Y) is a valid form: python-stdnum alone would refuse it
    letter = "N" + good[1:17]
    letter += gb32100_check_char(letter)
    assert gb32100_problem(letter) is None
    assert served.get(f"{VERIFY}/business_license/{letter}", token).json()["valid"] is True


def test_a_birth_certificate_is_found_by_its_pseudonym_and_nothing_personal_is_answered(served):
    token = served.add("zj-civil", "33")
    r = served.get(f"{VERIFY}/birth_certificate/{certificate_no('32', 4)}", token)
    body = r.json()
    assert body["found"] and body["valid"] and body["status"] == "registered" and body["issuing_province"] == "32"
    assert "孩子" not in r.text and certificate_no("32", 4) not in r.text
    assert served.get(f"{VERIFY}/birth_certificate/{certificate_no('32', 4).lower()}", token).json()["found"]
    missing = served.get(f"{VERIFY}/birth_certificate/{certificate_no('34', 4)}", token).json()
    assert missing["valid"] and not missing["found"]
    assert served.get(f"{VERIFY}/birth_certificate/12345", token).json()["valid"] is False


def test_answers_are_signed_and_check_offline_after_a_rotation(served):
    token = served.add("sh-market", "31")
    answer = served.get(f"{VERIFY}/business_license/{make_uscc('330102', 33001)}", token).json()
    keys = served.client.get("/api/v1/keys").json()["keys"]
    assert len(keys) == 1 and keys[0]["algorithm"] == "Ed25519" and answer["signature"]["key_id"] == keys[0]["key_id"]
    assert signing.check(answer, keys)
    assert not signing.check({**answer, "status": "active"}, keys)  # a changed answer no longer checks
    assert not signing.check({**answer, "signature": {**answer["signature"], "signed_at": "2000-01-01T00:00:00Z"}}, keys)
    new_id = signing.rotate()
    later = served.get(f"{VERIFY}/birth_certificate/{certificate_no('32', 4)}", token).json()
    keys = served.client.get("/api/v1/keys").json()["keys"]
    assert [k["key_id"] for k in keys][-1] == new_id and len(keys) == 2 and later["signature"]["key_id"] == new_id
    assert signing.check(answer, keys) and signing.check(later, keys)  # the old answer still checks
    assert not any(p.is_relative_to(served.root) for p in signing.key_dir().rglob("*"))
