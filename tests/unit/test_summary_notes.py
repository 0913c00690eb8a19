"""The run summary (issue 18): "held back" only for rows that were not published, rows published
with warnings reported as such, fields absent by decision named, and source ids of any length in
straight columns."""

from __future__ import annotations

import json

from tongban.steps.summary import summarize

LONG = "zj_hangzhou_cg"  # 14 characters: a city source


def _delivery(source_id: str, published: int, top: list[dict], status: str = "published") -> dict:
    return {"entity": "data_resource", "source_id": source_id, "province_code": "33", "status": status,
            "rows_delivered": 100, "rows_published": published, "rows_quarantined": 100 - published,
            "top_reasons": json.dumps(top, ensure_ascii=False)}


def _report() -> dict:
    warn = [{"reason": "updated_before_published", "field": "updated_date", "rows": 7, "severity": "warn"},
            {"reason": "published_with_warnings", "field": None, "rows": 5, "severity": "warn"},
            {"reason": "absent_by_decision", "field": "open_condition_code", "rows": 90, "severity": "absent"}]
    return {
        "run_id": "r1",
        "deliveries": [
            _delivery(LONG, 90, [{"reason": "unmapped_code", "field": "domain_code", "rows": 10}, *warn]),
            _delivery("sh", 100, []),
        ],
        "held_back": [
            {"source_id": "sh", "entity": "data_resource", "field": "open_condition_code", "value": "开放",
             "rows": 3, "policy": "quarantine", "entries": [{"file": "x.csv", "line": 4}]},
            {"source_id": "sh", "entity": "data_resource", "field": "domain_code", "value": "交通",
             "rows": 2, "policy": "used, noted", "entries": [{"file": "y.csv", "line": 9}]},
        ],
        "gate": {"entities": {}},
    }


def test_a_long_source_id_keeps_the_columns_straight():
    lines = summarize(_report()).splitlines()
    head = next(line for line in lines if line.startswith("entity"))
    rows = [line for line in lines if line.startswith("data_resource")]
    assert len(rows) == 2
    for row in rows:  # the province code stands under "prov", the status under "status"
        assert row[head.index("prov"):].startswith("33 ")
        assert row[head.index("status"):].startswith("published")
    assert f"{LONG} " in rows[0]


def test_warnings_are_published_not_held_back():
    text = summarize(_report())
    (row,) = [line for line in text.splitlines() if line.startswith("data_resource") and LONG in line]
    assert "unmapped_code:domain_code×10" in row and "updated_before_published" not in row  # not a quarantine reason
    (warned,) = [line for line in text.splitlines() if "published with warnings" in line]
    assert f"{LONG} data_resource: 5 rows published with warnings" in warned
    assert "updated_before_published×7" in warned and "held back" not in warned
    assert "open_condition_code: absent by decision — 90 rows published with 'unknown'" in text


def test_held_back_means_not_published():
    lines = summarize(_report()).splitlines()
    held = lines.index(next(line for line in lines if line.startswith("held back by crosswalk entries")))
    assert "'开放' ×3 (quarantine)" in lines[held + 1]
    published = lines.index(next(line for line in lines if line.startswith("published with crosswalk entries")))
    assert "'交通' ×2 (used, noted)" in lines[published + 1]
    # the published value is not listed under "held back"
    assert all("交通" not in line for line in lines[held:published])
