"""``tongban exchange rollback``: a kept snapshot republished as a new, signed, audited version, under
the run lock, made current for every entity in one catalog swap."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from tests.unit.test_exchange import V1_ROWS, V2_ROWS, publish, write_warehouse
from tongban.cli import main
from tongban.common.runlock import run_lock
from tongban.exchange import connect_catalog, integrity, publish_snapshot, query, rebuild_catalog, rollback, signing
from tongban.serve import audit

V1_IDS, V2_IDS = [r[0] for r in V1_ROWS], [r[0] for r in V2_ROWS]


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """orgs and teams, each with v1 (V1_ROWS) and v2 (V2_ROWS, current); committed by a catalog that
    names the dictionary of run-2."""
    root = tmp_path / "exchange"
    monkeypatch.setenv("TONGBAN_EXCHANGE_DIR", str(root))
    monkeypatch.setenv("TONGBAN_BUILD_DIR", str(tmp_path / "build"))
    monkeypatch.delenv(signing.KEY_DIR_ENV, raising=False)
    monkeypatch.setenv("TONGBAN_STATE_URL", f"sqlite:///{tmp_path / 'state.sqlite'}")
    warehouse = tmp_path / "warehouse.duckdb"
    for rows, run_id in ((V1_ROWS, "run-1"), (V2_ROWS, "run-2")):
        write_warehouse(warehouse, rows)
        for entity in ("orgs", "teams"):
            publish(root, warehouse, entity=entity, run_id=run_id)
    (root / "_dictionary" / "run-2").mkdir(parents=True)
    rebuild_catalog(root, dictionary="run-2")
    return root


def ids(root: Path, entity: str) -> list[int]:
    return [r[0] for r in query(root, f"SELECT id FROM {entity} ORDER BY id")[1]]


def manifest(root: Path, entity: str, version: int) -> dict:
    return json.loads((root / entity / f"v{version}" / "_manifest.json").read_text(encoding="utf-8"))


def test_rollback_republishes_the_kept_version_as_a_new_signed_one_and_is_audited(root, capsys) -> None:
    assert main(["exchange", "rollback", "--to", "v1", "--entity", "orgs"]) == 0
    assert "orgs: v3 now holds v1 (was v2)" in capsys.readouterr().out
    assert ids(root, "orgs") == V1_IDS and ids(root, "teams") == V2_IDS  # only the entity asked for
    v1, v3 = manifest(root, "orgs", 1), manifest(root, "orgs", 3)
    assert v3["version"] == 3 and v3["rolled_back_from"] == 1 and v3["created_at"] > v1["created_at"]
    drop = ("version", "created_at", "rolled_back_from", "signature")
    assert {k: v for k, v in v3.items() if k not in drop} == {k: v for k, v in v1.items() if k not in drop}
    assert signing.check(v3, signing.public_keys()) and v3["signature"] != v1["signature"]
    part1, part3 = root / "orgs" / "v1" / "part-0.parquet", root / "orgs" / "v3" / "part-0.parquet"
    assert os.stat(part1).st_ino == os.stat(part3).st_ino  # the same immutable file, linked
    current = query(root, "SELECT entity, version FROM exchange_snapshots WHERE is_current ORDER BY entity")[1]
    assert current == [("orgs", 3), ("teams", 2)]
    assert integrity.committed(root)["dictionary"] == "run-2" and (root / "_dictionary" / "run-2").is_dir()
    assert integrity.verify(root) == [] and integrity.signature_problems(root) == ([], [])
    entries = [e["payload"] for e in audit.tail(20) if e["payload"].get("change") == "rolled_back"]
    assert entries == [{"change": "rolled_back", "operator_action": True, "entity": "orgs", "from_version": 2,
                        "to_version": 1, "new_version": 3}]
    assert audit.verify()[1] is None


def test_unknown_or_current_versions_are_refused_in_one_line(root, capsys) -> None:
    assert main(["exchange", "rollback", "--to", "v9", "--entity", "orgs"]) == 1
    assert capsys.readouterr().err == "no kept v9 of orgs: kept are orgs v1, v2\n"
    assert main(["exchange", "rollback", "--to", "v9"]) == 1
    assert capsys.readouterr().err == "no kept v9 of any entity: kept are orgs v1, v2; teams v1, v2\n"
    assert main(["exchange", "rollback", "--to", "v2", "--entity", "orgs"]) == 1
    assert "v2 is already the current version of orgs" in capsys.readouterr().err
    assert main(["exchange", "rollback", "--to", "latest"]) == 1
    assert not (root / "orgs" / "v3").exists() and audit.tail(5) == []


def test_rollback_waits_for_no_run_it_refuses_while_a_run_holds_the_lock(root, tmp_path, capsys) -> None:
    with run_lock(tmp_path / "build"):
        assert main(["exchange", "rollback", "--to", "v1"]) == 4
    assert "another tongban run holds" in capsys.readouterr().err
    assert not (root / "orgs" / "v3").exists()
    assert main(["exchange", "rollback", "--to", "v1"]) == 0  # every entity that keeps a v1
    assert ids(root, "orgs") == V1_IDS and ids(root, "teams") == V1_IDS


def test_a_changed_part_is_never_republished(root) -> None:
    part = root / "teams" / "v1" / "part-0.parquet"  # teams comes after orgs
    os.chmod(part, 0o644)
    with part.open("ab") as fh:
        fh.write(b"x")
    with pytest.raises(rollback.ExchangeError, match="teams/v1/part-0.parquet: sha256"):
        rollback.rollback(root, 1)  # every entity: checked before anything is written
    for entity in ("orgs", "teams"):
        assert sorted(p.name for p in (root / entity).iterdir()) == ["v1", "v2"]


def test_readers_see_the_old_snapshots_or_the_rolled_back_ones_never_a_mix(root) -> None:
    seen: list[tuple] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            try:
                con = connect_catalog(root)
                try:
                    seen.append(con.execute("SELECT (SELECT list(id ORDER BY id) FROM orgs), "
                                            "(SELECT list(id ORDER BY id) FROM teams)").fetchone())
                finally:
                    con.close()
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for t in readers:
        t.start()
    try:
        for to in (1, 2, 1, 2, 1, 2):  # both entities, one catalog swap each time
            assert {r.entity for r in rollback.rollback(root, to)} == {"orgs", "teams"}
    finally:
        done.set()
        for t in readers:
            t.join()
    assert errors == []
    assert seen and all(s in [(V1_IDS, V1_IDS), (V2_IDS, V2_IDS)] for s in seen), \
        [s for s in seen if s not in [(V1_IDS, V1_IDS), (V2_IDS, V2_IDS)]][:3]
    assert [s.version for s in integrity.current_snapshots(root).values()] == [8, 8]


def test_a_partitioned_snapshot_rolls_back_part_by_part(root, tmp_path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    for rows, run_id in ((V1_ROWS, "run-1"), (V2_ROWS, "run-2")):
        write_warehouse(warehouse, rows)
        publish_snapshot(root, entity="parted", warehouse_path=warehouse, relation="marts.orgs", run_id=run_id,
                         standard_version="1", partition_by="province_code")
    [done] = rollback.rollback(root, 1, "parted")
    assert done.snapshot.version == 3 and ids(root, "parted") == V1_IDS
    v1, v3 = manifest(root, "parted", 1), manifest(root, "parted", 3)
    assert [(p["file"], p["sha256"]) for p in v3["parts"]] == [(p["file"], p["sha256"]) for p in v1["parts"]]
    assert [p["reused_from"] for p in v3["parts"]] == [1, 1]  # written by v1, as a publish that links names it
    assert all(os.stat(done.snapshot.path / p["file"]).st_ino == os.stat(root / "parted" / "v1" / p["file"]).st_ino
               for p in v3["parts"])
    assert integrity.verify(root) == [] and integrity.signature_problems(root) == ([], [])
