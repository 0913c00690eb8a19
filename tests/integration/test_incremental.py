"""Re-runs do only what changed (issue 5): a delivery recognised by its sha256 is not read again,
its checked table is not rebuilt, and its part of the published snapshot is linked from the
previous snapshot; an entity none of whose deliveries changed is not built, gated or read again —
and what is published is exactly what a full run on the same deliveries publishes."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import threading
from pathlib import Path

import duckdb
import pytest

from tongban.sample import write_samples
from tongban.steps.loaded import standards

from tests.workdirs import use_work

ROWS = 300
ENTITIES = ("birth_registration", "business_license")
KEY = "tongban-test-pseudonym-key-0123456789abcdef"


def _use(mp: pytest.MonkeyPatch, work: Path, inbox: Path) -> None:
    use_work(mp, work, inbox, KEY)


def _run(mp, work: Path, inbox: Path, *, lanes: bool = False, early: bool = False) -> tuple[dict, dict]:
    from tongban import pipeline

    _use(mp, work, inbox)
    run = pipeline.start_run(list(ENTITIES))
    if lanes:  # as `tongban run` takes them: XLSX in one thread, the rest in another
        intakes = pipeline.intake_all(run, workers=2, check_early=True)
        assert [(i["source_id"], i["entity"]) for i in intakes] == \
            [(src["source_id"], src["entity"]) for src in run["sources"]]
    else:
        intakes = [pipeline.intake(run, src) for src in run["sources"]]
    built = []
    if early:  # the checked tables of the deliveries DuckDB reads, built before the run's transform
        # with DuckDB on the spare cores until intake's (here: already finished) XLSX lane is done
        xlsx_done = threading.Event()
        threading.Timer(0.5, xlsx_done.set).start()
        built = pipeline.build_checked(run, [i for i in intakes if i["source_id"] != "ah"], spare_until=xlsx_done)
    transformed = pipeline.transform(run, intakes)
    gate = pipeline.gate(run, transformed)
    conservation = pipeline.check_conservation(run, intakes, transformed)
    published = pipeline.publish(run, intakes, transformed, gate, conservation)
    return {"intakes": intakes, "transformed": transformed, "gate": gate, "built_early": built}, published


def _manifest(work: Path, entity: str, version: int) -> dict:
    return json.loads((work / "exchange" / entity / f"v{version}" / "_manifest.json").read_text(encoding="utf-8"))


def _rows(work: Path, entity: str, version: int) -> list[tuple]:
    files = sorted(str(p) for p in (work / "exchange" / entity / f"v{version}").glob("*.parquet"))
    with duckdb.connect() as con:
        return sorted(con.execute(f"select * exclude (run_id) from read_parquet({files!r})").fetchall(),
                      key=repr)


def _executed(work: Path) -> dict[str, str]:
    """The SQL dbt last ran for each harmonized table (its target/run file)."""
    run = work / "build" / "dbt" / "target" / "run" / "tongban" / "models" / "harmonized"
    return {p.stem: p.read_text(encoding="utf-8") for p in run.glob("*.sql")}


def _clean_rows(inbox: Path, prov: str) -> list[int]:
    """Data rows (0-based) of a province's births the sample left without a defect."""
    with (inbox / prov / "births.answer_key.csv").open(encoding="utf-8") as fh:
        bad = {int(r["row_number"]) - 1 for r in csv.DictReader(fh)}
    return [i for i in range(ROWS) if i not in bad]


def _certificate(inbox: Path, prov: str, row: int) -> str:
    """The birth certificate number of a data row of 上海's CSV or 浙江's JSON Lines births."""
    if prov == "zj":
        lines = (inbox / "zj" / "births.jsonl").read_text(encoding="utf-8").splitlines()
        return json.loads(lines[row])["certificateNumber"]
    with (inbox / "sh" / "births.csv").open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))[row]["certificate_no"]


def _give_js_certificate(inbox: Path, row: int, number: str) -> None:
    """Set a data row's birth certificate number in 江苏's births CSV (in its own encoding)."""
    path = inbox / "js" / "births.csv"
    raw = path.read_bytes()
    encoding = "utf-8"
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError:
        encoding = "gb18030"
        text = raw.decode(encoding)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    rows[row + 1][rows[0].index("CSYXZMBH")] = number
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\r\n" if "\r\n" in text else "\n").writerows(rows)
    path.write_bytes(out.getvalue().encode(encoding))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    inbox = tmp_path_factory.mktemp("inbox")
    for name in ("births", "licenses"):
        write_samples(name, ROWS, 11, inbox)
    # birth certificate numbers are unique across the region (rules across rows span sources): a
    # 江苏 row takes a number 浙江 also delivered, so 浙江's row (later in source order) is sent back
    zj_row, js_row = _clean_rows(inbox, "zj")[3], _clean_rows(inbox, "js")[3]
    _give_js_certificate(inbox, js_row, _certificate(inbox, "zj", zj_row))
    work = tmp_path_factory.mktemp("incremental")
    out = {"inbox": inbox, "work": work}
    with pytest.MonkeyPatch.context() as mp:
        out["first"] = _run(mp, work, inbox)
        out["executed_first"] = _executed(work)
        out["same"] = _run(mp, work, inbox)
        # 江苏 re-delivers its births (another seed's rows); everything else is byte for byte the same
        other = tmp_path_factory.mktemp("other")
        write_samples("births", ROWS, 12, other)
        shutil.copy2(other / "js" / "births.csv", inbox / "js" / "births.csv")
        # ... which no longer has 浙江's number, but has one of 上海's: in the re-run 浙江's row is
        # published, 上海's sent back, though neither province delivered again
        sh_row = _clean_rows(inbox, "sh")[5]
        _give_js_certificate(inbox, _clean_rows(other, "js")[7], _certificate(inbox, "sh", sh_row))
        out["flips"] = {"zj": zj_row + 1, "sh": sh_row + 1}  # their source_row_number
        out["changed"] = _run(mp, work, inbox)
        out["executed_changed"] = _executed(work)
        # the reference: a full run from scratch on the deliveries as they are now, its intake in
        # two lanes (the others take the deliveries one after another)
        fresh = tmp_path_factory.mktemp("fresh")
        out["fresh"] = _run(mp, fresh, inbox, lanes=True)
        out["fresh_work"] = fresh
        # the same from scratch, with six checked tables built during intake (check_early)
        early = tmp_path_factory.mktemp("early")
        out["early"] = _run(mp, early, inbox, early=True)
        out["early_work"] = early
    return out


def test_unchanged_deliveries_are_not_read_or_rebuilt(runs):
    first, _ = runs["first"]
    assert not any(i.get("reused") for i in first["intakes"])
    assert first["transformed"]["reused_checked"] == []
    same, _ = runs["same"]
    assert all(i.get("reused") for i in same["intakes"])
    assert {i["landed_run_id"] for i in same["intakes"]} == {runs["first"][1]["run_id"]}
    assert len(same["transformed"]["reused_checked"]) == 8
    for entity in ENTITIES:
        parts = _manifest(runs["work"], entity, 2)["parts"]
        assert len(parts) == 4 and all(p.get("reused_from") == 1 for p in parts), parts


def test_an_entity_with_nothing_changed_is_not_built_gated_or_read_again(runs):
    first_run_id = runs["first"][1]["run_id"]
    first, _ = runs["first"]
    assert first["transformed"]["unchanged_entities"] == []
    same, published = runs["same"]
    assert same["transformed"]["unchanged_entities"] == sorted(ENTITIES)
    assert same["transformed"]["dbt_nodes"] == 0  # dbt was not run at all
    for entity in ENTITIES:
        gate = same["gate"]["entities"][entity]
        assert gate["reused_from_run"] == first_run_id and gate["success"]
        # linked whole from the first snapshot, whose content key it shares, without reading a row
        assert _manifest(runs["work"], entity, 2)["content_key"] == _manifest(runs["work"], entity, 1)["content_key"]
    changed, _ = runs["changed"]
    assert changed["transformed"]["unchanged_entities"] == ["business_license"]
    assert changed["gate"]["entities"]["business_license"]["reused_from_run"] == first_run_id
    assert "reused_from_run" not in changed["gate"]["entities"]["birth_registration"]
    assert _manifest(runs["work"], "birth_registration", 3)["content_key"] != \
        _manifest(runs["work"], "birth_registration", 2)["content_key"]


def _coverage_rows(cov) -> list[tuple]:
    return sorted((c.source_id, c.entity, c.field, c.rows, tuple((v.value, v.rows, v.status) for v in c.values))
                  for c in cov)


def test_coverage_counts_only_a_delivery_it_has_not_counted(runs):
    """The data dictionary's crosswalk coverage keeps each landed delivery's value counts under its
    sha256 (build/state/coverage): a re-run counts only the re-delivered delivery, and what it
    publishes equals counting everything afresh."""

    from tongban.common.config import settings
    from tongban.committee.coverage import coverage

    changed, _ = runs["changed"]
    cache = runs["work"] / "build" / "state" / "coverage"
    kept = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in cache.glob("*.json")}
    assert set(kept) == {f"{p}__{e}.json" for e in ENTITIES for p in ("ah", "js", "sh", "zj")}
    sha = {(i["source_id"], i["entity"]): i["delivery_sha256"] for i in changed["intakes"]}
    first = {(i["source_id"], i["entity"]): i["delivery_sha256"] for i in runs["first"][0]["intakes"]}
    assert sha[("js", "birth_registration")] != first[("js", "birth_registration")]
    for (source, entity), digest in sha.items():  # the re-delivered one counted again, under its new sha256
        assert kept[f"{source}__{entity}.json"]["stamp"][0] == digest
    with pytest.MonkeyPatch.context() as mp:
        _use(mp, runs["work"], runs["inbox"])
        s = settings()
        std = standards(s)
        afresh = coverage(std, s, read_inbox=False, known_sha256=sha)
        assert _coverage_rows(coverage(std, s, read_inbox=False, known_sha256=sha, cache_dir=cache)) == \
            _coverage_rows(afresh)
        # it is the kept counts that answer: a value planted in them comes back, classified
        path = cache / "sh__business_license.json"
        planted = json.loads(path.read_text(encoding="utf-8"))
        for counts in planted["fields"].values():
            counts["未登记的值"] = 7
        path.write_text(json.dumps(planted, ensure_ascii=False), encoding="utf-8")
        try:
            cov = coverage(std, s, read_inbox=False, known_sha256=sha, cache_dir=cache)
            hits = [v for c in cov if (c.source_id, c.entity) == ("sh", "business_license")
                    for v in c.values if v.value == "未登记的值"]
            assert hits and all((v.rows, v.status) == (7, "unmapped") for v in hits)
            # kept for another delivery (another sha256), the counts are not used
            planted["stamp"][0] = "0" * 64
            path.write_text(json.dumps(planted, ensure_ascii=False), encoding="utf-8")
            again = coverage(std, s, read_inbox=False, known_sha256=sha, cache_dir=cache)
            assert _coverage_rows(again) == _coverage_rows(afresh)
            assert json.loads(path.read_text(encoding="utf-8")) == kept["sh__business_license.json"]
        finally:
            path.write_text(json.dumps(kept["sh__business_license.json"], ensure_ascii=False), encoding="utf-8")


def test_a_changed_suite_gates_an_unchanged_entity_again(runs, tmp_path):
    suites = tmp_path / "expectations"
    shutil.copytree(Path(__file__).resolve().parents[2] / "expectations", suites)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TONGBAN_EXPECTATIONS_DIR", str(suites))
        again, _ = _run(mp, runs["work"], runs["inbox"])
        assert again["transformed"]["unchanged_entities"] == sorted(ENTITIES)
        assert all("reused_from_run" in again["gate"]["entities"][e] for e in ENTITIES)
        suite = json.loads((suites / "business_license.json").read_text(encoding="utf-8"))
        suite.setdefault("meta", {})["note"] = "edited by the committee"
        (suites / "business_license.json").write_text(json.dumps(suite, ensure_ascii=False), encoding="utf-8")
        edited, _ = _run(mp, runs["work"], runs["inbox"])
    assert "reused_from_run" in edited["gate"]["entities"]["birth_registration"]
    gate = edited["gate"]["entities"]["business_license"]
    assert "reused_from_run" not in gate and gate["success"] and gate["evaluated"] > 0


def test_one_changed_delivery_is_the_only_one_reprocessed(runs):
    changed, _ = runs["changed"]
    relanded = {(i["source_id"], i["entity"]) for i in changed["intakes"] if not i.get("reused")}
    assert relanded == {("js", "birth_registration")}
    reused = set(changed["transformed"]["reused_checked"])
    assert "int_birth_registration__checked_js" not in reused
    assert len(reused) == 7
    births = {p["value"]: p for p in _manifest(runs["work"], "birth_registration", 3)["parts"]}
    assert "reused_from" not in births["js"]
    # another province's part is reused only if the new 江苏 rows did not change the outcome of its
    # rows across sources: 安徽's did not; 浙江's and 上海's each had a row flip (fixture)
    assert births["ah"].get("reused_from") == 1
    assert "reused_from" not in births["sh"] and "reused_from" not in births["zj"]
    licences = _manifest(runs["work"], "business_license", 3)["parts"]
    assert all(p.get("reused_from") == 1 for p in licences)


def test_the_harmonized_tables_are_rebuilt_source_by_source(runs):
    """The keys are source-scoped (identity_hash), so a re-delivered source's rows are deleted and
    selected again and the other sources' rows stay where they are; a change to the models
    rebuilds the tables whole (--full-refresh)."""
    assert runs["first"][0]["transformed"]["full_refresh"] is True
    changed = runs["changed"][0]["transformed"]
    assert changed["full_refresh"] is False and changed["unchanged_entities"] == ["business_license"]
    for table in ("birth_registration", "birth_registration__rejections"):
        first, again = runs["executed_first"][table], runs["executed_changed"][table]
        assert "delete from" not in first and "create" in first.lower()  # built whole
        # the re-run: 江苏's rows deleted, and only 江苏's selected and inserted again
        assert f'delete from "warehouse"."harmonized"."{table}" where (source_id in (\'js\') or' in again
        assert "insert into" in again
    compiled = runs["work"] / "build" / "dbt" / "target" / "compiled" / "tongban" / "models" / "harmonized"
    assert "and (source_id in ('js') or" in (compiled / "birth_registration.sql").read_text(encoding="utf-8")
    # business_license was not built at all in the re-run: what ran for it is the first run's
    assert runs["executed_changed"]["business_license"] == runs["executed_first"]["business_license"]
    # what each table's rows were built from, per source
    with duckdb.connect(str(runs["work"] / "build" / "warehouse.duckdb"), read_only=True) as con:
        builds = dict(con.execute('select source_id, checked_build from tongban_state."birth_registration__builds"')
                      .fetchall())
        checked = {s: con.execute(f"select any_value(checked_build) from "
                                  f"intermediate.int_birth_registration__checked_{s}").fetchone()[0] for s in builds}
    assert builds == checked and len(set(builds.values())) == 2  # js's build, and the first run's


def test_rows_of_deliveries_not_delivered_again_change_with_the_rules_across_sources(runs):
    """A row flagged across sources at the last build, or flagged now, is selected again even though
    its own delivery did not change; the published rows equal a full run's (next test)."""
    def published(version: int) -> set[tuple[str, int]]:
        files = sorted(str(p) for p in (runs["work"] / "exchange" / "birth_registration" / f"v{version}").glob("*.parquet"))
        with duckdb.connect() as con:
            return set(con.execute(f"select source_id, source_row_number from read_parquet({files!r})").fetchall())

    zj, sh = ("zj", runs["flips"]["zj"]), ("sh", runs["flips"]["sh"])
    first, changed = published(1), published(3)
    assert zj not in first and sh in first  # 浙江's number was also 江苏's
    assert zj in changed and sh not in changed  # now 上海's is
    with duckdb.connect(str(runs["work"] / "build" / "warehouse.duckdb"), read_only=True) as con:
        codes = dict(((s, n), c) for s, n, c in con.execute(
            "select source_id, source_row_number, reason_codes from harmonized.birth_registration__rejections "
            "where source_id in ('sh', 'zj')").fetchall())
    assert codes[sh] == ["duplicate_value"] and zj not in codes
    again = runs["executed_changed"]["birth_registration"]
    assert "or (source_id, source_row_number) in (" in again and "__flagged" in again


@pytest.mark.parametrize("entity", ENTITIES)
def test_the_re_run_publishes_what_a_full_run_publishes(runs, entity):
    assert _rows(runs["work"], entity, 3) == _rows(runs["fresh_work"], entity, 1)


def test_checked_tables_built_during_intake_are_not_built_again(runs):
    early, _ = runs["early"]
    expected = sorted(f"int_{e}__checked_{p}" for e in ENTITIES for p in ("js", "sh", "zj"))
    assert early["built_early"] == expected
    assert early["transformed"]["reused_checked"] == expected
    for entity in ENTITIES:
        assert _rows(runs["early_work"], entity, 1) == _rows(runs["fresh_work"], entity, 1)
    # DuckDB's threads were given back: a new handle on the warehouse sees DuckDB's default (which
    # is not os.cpu_count() under every cgroup or affinity mask)
    with duckdb.connect() as con:
        default = con.execute("select current_setting('threads')").fetchone()[0]
    with duckdb.connect(str(runs["early_work"] / "build" / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("select current_setting('threads')").fetchone()[0] == default


def test_a_failed_early_build_records_nothing(runs, tmp_path, monkeypatch):
    """A checked table whose early build failed is built (and its failure reported) by the run's
    transform: nothing about it is recorded as up to date."""
    from tongban import pipeline

    from tongban.common.config import settings
    from tongban.steps.incremental import checked_fingerprints, unchanged_models

    work = tmp_path / "w"
    _use(monkeypatch, work, runs["inbox"])
    run = pipeline.start_run(list(ENTITIES))
    intakes = [pipeline.intake(run, src) for src in run["sources"] if src["source_id"] == "sh"]
    Path(intakes[0]["raw_path"]).unlink()  # its staging view has nothing to read: dbt fails
    monkeypatch.setenv("TONGBAN_DUCKDB_MEMORY_LIMIT", "700MB")
    assert pipeline.build_checked(run, intakes) == []
    # the early build's own, smaller DuckDB memory limit was for that dbt invocation only
    assert os.environ["TONGBAN_DUCKDB_MEMORY_LIMIT"] == "700MB"
    s = settings()
    fingerprints = checked_fingerprints(s.dbt_project_dir, s.reference_dir, standards(s), intakes)
    assert len(fingerprints) == 2
    assert unchanged_models(s.warehouse_path, fingerprints) == []
    # the same call with both files in place builds and records both
    intakes = [pipeline.intake(run, src) for src in run["sources"] if src["source_id"] == "sh"]
    assert Path(intakes[0]["raw_path"]).is_file()
    fingerprints = checked_fingerprints(s.dbt_project_dir, s.reference_dir, standards(s), intakes)
    assert pipeline.build_checked(run, intakes) == sorted(fingerprints)
    assert unchanged_models(s.warehouse_path, fingerprints) == sorted(fingerprints)


def test_a_changed_row_of_an_unchanged_delivery_is_published_again(tmp_path):
    """The snapshot's parts are reused by their content, not by their delivery: a row whose
    outcome changed (e.g. it became a duplicate of another province's row) is written again."""
    from tongban import exchange

    wh = tmp_path / "w.duckdb"
    with duckdb.connect(str(wh)) as con:
        con.execute("create table t as select * from (values ('a', 1, 'x'), ('a', 2, 'y'), ('b', 1, 'z')) "
                    "v(source_id, n, v)")
    root = tmp_path / "exchange"
    kw = dict(entity="t", warehouse_path=wh, relation="main.t", run_id="r1", standard_version="1",
              partition_by="source_id")
    exchange.publish_snapshot(root, **kw)
    with duckdb.connect(str(wh)) as con:
        con.execute("update t set v = 'changed' where source_id = 'b'")
    exchange.publish_snapshot(root, **{**kw, "run_id": "r2"})
    parts = {p["value"]: p for p in json.loads((root / "t" / "v2" / "_manifest.json").read_text())["parts"]}
    assert parts["a"].get("reused_from") == 1
    assert "reused_from" not in parts["b"]
    with duckdb.connect() as con:
        assert con.execute(f"select v from read_parquet('{root}/t/v2/part-b.parquet')").fetchall() == [("changed",)]


def test_a_content_key_links_the_previous_snapshot_whole_without_reading_it(tmp_path):
    """The key vouches for the rows: with the previous snapshot's key, nothing is read (here the
    table was changed behind the key's back, and the old rows are what is published); with
    another key, the parts are compared by content again."""
    from tongban import exchange

    wh = tmp_path / "w.duckdb"
    with duckdb.connect(str(wh)) as con:
        con.execute("create table t as select * from (values ('a', 1, 'x'), ('b', 1, 'z')) v(source_id, n, v)")
    root = tmp_path / "exchange"
    kw = dict(entity="t", warehouse_path=wh, relation="main.t", standard_version="1", partition_by="source_id")
    exchange.publish_snapshot(root, run_id="r1", content_key="k1", **kw)
    with duckdb.connect(str(wh)) as con:
        con.execute("update t set v = 'changed' where source_id = 'b'")
    exchange.publish_snapshot(root, run_id="r2", content_key="k1", **kw)
    manifest = json.loads((root / "t" / "v2" / "_manifest.json").read_text())
    assert [p.get("reused_from") for p in manifest["parts"]] == [1, 1]
    assert (root / "t" / "v2" / "part-b.parquet").stat().st_ino == (root / "t" / "v1" / "part-b.parquet").stat().st_ino
    exchange.publish_snapshot(root, run_id="r3", content_key="k2", **kw)
    parts = {p["value"]: p for p in json.loads((root / "t" / "v3" / "_manifest.json").read_text())["parts"]}
    assert parts["a"].get("reused_from") == 1 and "reused_from" not in parts["b"]
    with duckdb.connect() as con:
        assert con.execute(f"select v from read_parquet('{root}/t/v3/part-b.parquet')").fetchall() == [("changed",)]
    # no key: compared by content, and the key of the snapshot before is not carried on
    exchange.publish_snapshot(root, run_id="r4", **kw)
    manifest = json.loads((root / "t" / "v4" / "_manifest.json").read_text())
    assert "content_key" not in manifest
    assert [(p["value"], p.get("reused_from")) for p in manifest["parts"]] == [("a", 1), ("b", 3)]


@pytest.mark.parametrize(("own", "early"), [(None, "512MB"), ("1GB", "512MB"), ("4GB", "512MB"),
                                            ("256MB", "256MB"), ("300000KB", "300000KB")])
def test_the_early_build_keeps_within_tongbans_own_memory_limit(monkeypatch, own, early):
    from tongban import pipeline

    if own is None:
        monkeypatch.delenv("TONGBAN_DUCKDB_MEMORY_LIMIT", raising=False)
    else:
        monkeypatch.setenv("TONGBAN_DUCKDB_MEMORY_LIMIT", own)
    assert pipeline.early_memory_limit() == early


def test_a_copied_work_directory_is_still_recognised(runs, tmp_path):
    """Backups and moves keep sizes and mtimes (cp -p, shutil.copytree): nothing is redone."""
    copy = tmp_path / "copied"
    shutil.copytree(runs["work"], copy, symlinks=True)
    # the recorded paths of the landed files are absolute: a moved work directory lands again
    # (test_a_moved_work_directory_lands_again), a copy restored in place (as the benchmark does)
    # is reused
    shutil.rmtree(runs["work"])
    shutil.copytree(copy, runs["work"], symlinks=True)
    with pytest.MonkeyPatch.context() as mp:
        again, _ = _run(mp, runs["work"], runs["inbox"])
    assert all(i.get("reused") for i in again["intakes"])
    assert len(again["transformed"]["reused_checked"]) == 8


def test_a_moved_work_directory_lands_again(runs, tmp_path):
    """The landed files are recorded by absolute path: after a move they are not found where the
    record says, so every delivery is landed again, into the moved directory."""
    from tongban import pipeline

    moved = tmp_path / "moved"
    shutil.move(runs["work"], moved)
    try:
        with pytest.MonkeyPatch.context() as mp:
            _use(mp, moved, runs["inbox"])
            run = pipeline.start_run(list(ENTITIES))
            intakes = [pipeline.intake(run, src) for src in run["sources"]]
    finally:
        shutil.move(moved, runs["work"])
    assert len(intakes) == 8
    assert [bool(i.get("reused")) for i in intakes] == [False] * 8
    assert all(i["status"] == "landed" and Path(i["raw_path"]).is_relative_to(moved) for i in intakes)
