"""C: sharing classes, and rows of one snapshot (current or kept), paged by key."""

from __future__ import annotations

import csv
import io
import shutil
import threading

import duckdb
import pytest

from tests.serve.conftest import LICENCES_PER_PROVINCE, PROVINCES, build_warehouse, publish
from tongban.serve import sharing
from tongban.standards.generate import load_checked
from tongban.standards.load import load_standards
from tongban.standards.targets.dictionary import build_dictionary
from tongban.standards.lint import check
from tongban.common.config import PROJECT_ROOT

ROWS = "/api/v1/entities/{}/rows"


def test_every_field_of_the_standard_has_a_sharing_class_and_the_lint_says_when_one_has_none(tmp_path):
    std = load_standards(PROJECT_ROOT / "standards")
    for entity in std.entities.values():
        assert all(entity.sharing_of(f.name) for f in entity.fields), entity.entity
    births, licences = std.entities["birth_registration"], std.entities["business_license"]
    assert births.sharing == "conditional" and licences.sharing == "unconditional"
    assert licences.sharing_of("legal_representative") == "conditional" and licences.sharing_of("uscc") == "unconditional"
    assert std.entities["data_resource"].sharing == "unconditional"

    shutil.copytree(PROJECT_ROOT / "standards", tmp_path / "standards")
    path = tmp_path / "standards" / "entities" / "data_resource.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("sharing: unconditional\n", ""), encoding="utf-8")
    findings = [f for f in check(tmp_path / "standards").findings if "no sharing class" in f.message]
    assert len(findings) == len(std.entities["data_resource"].fields)
    assert findings[0].file == "standards/entities/data_resource.yaml" and findings[0].line > 1


def test_the_dictionary_shows_each_fields_sharing_class():
    files = build_dictionary(load_checked(PROJECT_ROOT / "standards"))
    page = next(text for path, text in files.items() if path.endswith("business_license.html"))
    assert "共享类别 Sharing" in page and "有条件共享 conditional (with a grant)" in page
    assert "无条件共享 unconditional" in page


def test_entities_lists_keys_classes_fields_and_snapshots(served):
    token = served.add("sh", "31")
    body = served.get("/api/v1/entities", token).json()
    by = {e["entity"]: e for e in body["entities"]}
    assert set(by) == {"business_license", "birth_registration", "data_resource"}
    lic = by["business_license"]
    assert lic["key"] == ["license_id"] and lic["sharing"] == "unconditional" and lic["snapshot"]["version"] == 1
    rep = next(f for f in lic["fields"] if f["name"] == "legal_representative")
    assert rep == {"name": "legal_representative", "sharing": "conditional",
                   "columns": ["legal_representative_pseudonym", "legal_representative_masked"]}


def test_unconditional_rows_leave_conditional_fields_out_and_page_by_key(served):
    token = served.add("sh", "31")
    seen, cursor, pages = [], None, 0
    while True:
        r = served.get(ROWS.format("business_license"), token, params={"limit": 7, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        body = r.json()
        pages += 1
        for row in body["rows"]:
            assert not any(c.startswith("legal_representative") for c in row)  # absent, not null
            assert set(row) >= {"license_id", "uscc", "enterprise_name", "status_code", "province_code"}
        seen += [row["license_id"] for row in body["rows"]]
        assert body["snapshot"]["version"] == 1 and r.headers["X-Snapshot-Version"] == "1"
        cursor = body["next_cursor"]
        if cursor is None:
            break
    total = LICENCES_PER_PROVINCE * len(PROVINCES)
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == total and pages == -(-total // 7)
    one = served.get(ROWS.format("business_license"), token, params={"province": "32", "limit": 10000}).json()
    assert {r["province_code"] for r in one["rows"]} == {"32"} and len(one["rows"]) == LICENCES_PER_PROVINCE
    assert served.get(ROWS.format("business_license"), token, params={"limit": 10001}).status_code == 422
    assert served.get(ROWS.format("business_license"), token, params={"cursor": "garbage"}).status_code == 400


def test_filters_bind_values_and_refuse_hidden_columns(served):
    token = served.add("sh", "31")
    r = served.get(ROWS.format("business_license"), token, params={"status_code": "revoked"})
    assert {row["license_id"] for row in r.json()["rows"]} == {f"lic_{p}_0001" for p in PROVINCES}
    injected = served.get(ROWS.format("business_license"), token, params={"status_code": "x' OR '1'='1"})
    assert injected.status_code == 200 and injected.json()["rows"] == []
    hidden = served.get(ROWS.format("business_license"), token, params={"legal_representative_masked": "x"})
    assert hidden.status_code == 403
    assert served.get(ROWS.format("business_license"), token, params={"nope": "x"}).status_code == 400
    listed = served.get(ROWS.format("data_resource"), token, params={"keywords": "k3"}).json()["rows"]
    assert sorted(r["resource_id"] for r in listed) == [f"res_{p}_3" for p in PROVINCES]


def test_one_record_by_its_key(served):
    token = served.add("sh", "31")
    r = served.get(ROWS.format("business_license") + "/lic_32_0005", token)
    assert r.status_code == 200 and r.json()["row"]["enterprise_name"] == "企业32-05"
    assert r.headers["X-Snapshot-Version"] == str(r.json()["snapshot"]["version"])
    assert served.get(ROWS.format("business_license") + "/nope", token).status_code == 404
    assert served.get(ROWS.format("nonesuch") + "/x", token).status_code == 404


def test_csv_is_safe_against_formula_injection_and_parquet_is_the_same_page(served):
    token = served.add("sh", "31")
    r = served.get(ROWS.format("business_license"), token, params={"format": "csv", "province": "31", "limit": 3})
    assert r.headers["content-type"].startswith("text/csv") and r.headers["x-snapshot-version"] == "1"
    assert r.headers["x-next-cursor"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert rows[0]["enterprise_name"].startswith("'=HYPERLINK")
    res = served.get(ROWS.format("data_resource"), token, params={"format": "csv"}).text
    assert "'+目录" in res
    p = served.get(ROWS.format("business_license"), token, params={"format": "parquet", "province": "31", "limit": 3})
    path = served.work / "page.parquet"
    path.write_bytes(p.content)
    got = duckdb.sql(f"SELECT license_id FROM read_parquet('{path}')").fetchall()
    assert [g[0] for g in got] == [row["license_id"] for row in rows]
    assert p.headers["x-next-cursor"] == r.headers["x-next-cursor"]  # parquet pages like the others
    last = served.get(ROWS.format("business_license"), token, params={"format": "parquet", "province": "31",
                                                                      "limit": 30})
    assert "x-next-cursor" not in last.headers


def test_a_publish_never_mixes_versions_and_kept_snapshots_stay_readable(served):
    token = served.add("sh", "31")
    first = served.get(ROWS.format("business_license"), token, params={"limit": 50}).json()
    warehouse = served.work / "warehouse2.duckdb"
    build_warehouse(warehouse, extra_licence=True)
    publish(served.root, warehouse, entities=("business_license",), run_id="run-2")
    # the cursor keeps its snapshot: the rest of the pages come from v1
    rest = served.get(ROWS.format("business_license"), token, params={"cursor": first["next_cursor"], "limit": 10000}).json()
    assert rest["snapshot"]["version"] == 1 and len(first["rows"]) + len(rest["rows"]) == 90
    now = served.get(ROWS.format("business_license"), token, params={"limit": 10000}).json()
    assert now["snapshot"]["version"] == 2 and len(now["rows"]) == 91
    old = served.get(ROWS.format("business_license"), token, params={"as_of": "v1", "limit": 10000}).json()
    assert old["snapshot"]["version"] == 1 and len(old["rows"]) == 90
    at = served.get(ROWS.format("business_license"), token, params={"as_of": first["snapshot"]["created_at"]}).json()
    assert at["snapshot"]["version"] == 1
    assert served.get(ROWS.format("business_license"), token, params={"as_of": "v9"}).status_code == 404
    assert served.get(ROWS.format("business_license"), token, params={"as_of": "1999-01-01T00:00:00Z"}).status_code == 404


def test_reads_during_publishes_each_come_from_one_snapshot(served):
    """Readers and a publisher at once (bounded: a fixed number of each, no timing)."""
    token = served.add("sh", "31")
    warehouse = served.work / "warehouse2.duckdb"
    build_warehouse(warehouse, extra_licence=True)
    errors: list[str] = []

    def publisher() -> None:
        for i in range(3):
            publish(served.root, warehouse, entities=("business_license",), run_id=f"run-p{i}")

    thread = threading.Thread(target=publisher)
    thread.start()
    for _ in range(15):
        body = served.get(ROWS.format("business_license"), token, params={"limit": 10000}).json()
        expected = 90 if body["snapshot"]["version"] == 1 else 91
        if len(body["rows"]) != expected:
            errors.append(f"v{body['snapshot']['version']}: {len(body['rows'])} rows")
    thread.join()
    assert errors == []


@pytest.mark.parametrize("sharing_class", ["none", None])
def test_an_entity_not_shared_row_by_row_is_refused(sharing_class):
    std = load_standards(PROJECT_ROOT / "standards")
    entity = std.entities["data_resource"].model_copy(update={"sharing": sharing_class})
    with pytest.raises(sharing.Forbidden):
        sharing.resolve(entity, ["resource_id", "province_code"], [], None)
