"""Signed snapshots: every manifest is signed at publish, the public keys lie beside the catalog,
``tongban exchange verify --signatures`` names a changed manifest, rotation keeps old ones checking."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.unit.test_exchange import V1_ROWS, V2_ROWS, publish, write_warehouse
from tongban.cli import main
from tongban.exchange import integrity, rebuild_catalog, signing
from tongban.serve import audit

MANIFEST = "_manifest.json"


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    write_warehouse(path, V1_ROWS)
    return path


@pytest.fixture
def operator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The exchange (``tmp_path/exchange``) the operator's commands work on, with its own keys and state."""
    monkeypatch.setenv("TONGBAN_EXCHANGE_DIR", str(tmp_path / "exchange"))
    monkeypatch.setenv("TONGBAN_BUILD_DIR", str(tmp_path / "build"))
    monkeypatch.delenv(signing.KEY_DIR_ENV, raising=False)
    monkeypatch.setenv("TONGBAN_STATE_URL", f"sqlite:///{tmp_path / 'state.sqlite'}")
    return tmp_path / "exchange"


def two_versions(root: Path, warehouse: Path) -> None:
    publish(root, warehouse)
    write_warehouse(warehouse, V2_ROWS)
    publish(root, warehouse, run_id="run-2")
    rebuild_catalog(root)


def manifest_of(root: Path, version: int) -> dict:
    return json.loads((root / "orgs" / f"v{version}" / MANIFEST).read_text(encoding="utf-8"))


def rewrite(root: Path, version: int, manifest: dict) -> None:
    (root / "orgs" / f"v{version}" / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2),
                                                          encoding="utf-8")


def verify_signatures(capsys: pytest.CaptureFixture, *extra: str) -> tuple[int, str]:
    code = main(["exchange", "verify", "--signatures", *extra])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_every_manifest_is_signed_at_publish_and_the_keys_lie_beside_the_catalog(operator, warehouse) -> None:
    two_versions(operator, warehouse)
    keys = json.loads((operator / signing.KEYS_FILE).read_text(encoding="utf-8"))["keys"]
    assert keys == signing.public_keys() and len(keys) == 1 and keys[0]["algorithm"] == "Ed25519"
    for version in (1, 2):
        manifest = manifest_of(operator, version)
        assert manifest["signature"]["key_id"] == keys[0]["key_id"]
        assert signing.problem(manifest, keys) is None
        assert signing.problem({**manifest, "rows": 999}, keys) == "signature does not match"
    assert not any(p.is_relative_to(operator) for p in signing.key_dir().rglob("*"))
    assert integrity.signature_problems(operator) == ([], [])


def test_verify_signatures_names_a_changed_manifest_that_the_part_check_misses(operator, warehouse, capsys) -> None:
    two_versions(operator, warehouse)
    assert verify_signatures(capsys)[0] == 0
    changed = manifest_of(operator, 1)
    changed["run_id"] = "run-forged"  # an old version: the sha256 check of the current parts never sees it
    rewrite(operator, 1, changed)
    assert main(["exchange", "verify"]) == 0  # without the signature check, nothing is noticed
    code, out = verify_signatures(capsys)
    assert code == 1 and "orgs/v1/_manifest.json: signature does not match" in out and "orgs/v2" not in out


def test_unsigned_and_foreign_signatures(operator, warehouse, capsys) -> None:
    two_versions(operator, warehouse)
    v1, v2 = manifest_of(operator, 1), manifest_of(operator, 2)
    # a signature removed after signing began is never taken for an old unsigned manifest
    rewrite(operator, 2, {k: v for k, v in v2.items() if k != "signature"})
    code, out = verify_signatures(capsys, "--allow-unsigned")
    assert code == 1 and "orgs/v2/_manifest.json: unsigned, though an earlier version of orgs is signed" in out
    rewrite(operator, 2, v2)
    # v1 as published before manifests were signed: an error, unless the operator accepts those
    rewrite(operator, 1, {k: v for k, v in v1.items() if k != "signature"})
    code, out = verify_signatures(capsys)
    assert code == 1 and "orgs/v1/_manifest.json: unsigned" in out
    code, out = verify_signatures(capsys, "--allow-unsigned")
    assert code == 0 and "! orgs/v1/_manifest.json: unsigned (published before manifests were signed)" in out
    # signed by a key the exchange does not hold (the attacker's own, added to keys.json)
    held = signing.key_dir()
    other = operator.parent / "other-keys"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(signing.KEY_DIR_ENV, str(other))
        forged = signing.signed({**v1, "rows": 99})
        foreign = signing.public_keys()
    rewrite(operator, 1, forged)
    keys_file = operator / signing.KEYS_FILE
    keys_file.write_text(json.dumps({"keys": signing.public_keys() + foreign}), encoding="utf-8")
    code, out = verify_signatures(capsys)
    assert code == 1 and f"orgs/v1/_manifest.json: signed by unknown key {foreign[0]['key_id']}" in out
    assert f"keys.json: key {foreign[0]['key_id']} is not one the exchange holds" in out
    assert held == signing.key_dir()


def test_rotation_signs_with_the_new_key_keeps_the_old_one_published_and_is_audited(operator, warehouse,
                                                                                   capsys) -> None:
    publish(operator, warehouse)
    rebuild_catalog(operator)
    old = signing.public_keys()[0]["key_id"]
    assert main(["exchange", "rotate-key"]) == 0
    new = signing.public_keys()[-1]["key_id"]
    assert new != old and new in capsys.readouterr().out
    published = json.loads((operator / signing.KEYS_FILE).read_text(encoding="utf-8"))["keys"]
    assert [k["key_id"] for k in published] == [old, new]  # written at once, before any publish
    write_warehouse(warehouse, V2_ROWS)
    publish(operator, warehouse, run_id="run-2")
    rebuild_catalog(operator)
    assert manifest_of(operator, 1)["signature"]["key_id"] == old
    assert manifest_of(operator, 2)["signature"]["key_id"] == new
    assert verify_signatures(capsys)[0] == 0  # the old manifest still checks under its (old) key
    rotated = [e for e in audit.tail(50) if e["payload"].get("change") == "signing_key_rotated"]
    assert len(rotated) == 1 and rotated[0]["payload"] == {
        "change": "signing_key_rotated", "operator_action": True, "key_id": new, "previous_key_id": old}
    assert audit.verify()[1] is None
