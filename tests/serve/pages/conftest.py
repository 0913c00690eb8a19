"""The pages over the small real exchange of tests/serve/conftest.py, plus a births mart with small
cells (published by the same tongban.exchange.publish_snapshot), and logged-in clients."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest
from fastapi.testclient import TestClient

from tests.serve.pages.helpers import login
from tongban import exchange
from tongban.exchange.runs import record_run

#: (month, province, division, division name, births, other-province households): 3 and 1 are small
MART = [("2024-01-01", "31", "310101", "黄浦区", 3, 1), ("2024-01-01", "32", "320102", "玄武区", 12, 6),
        ("2024-02-01", "32", "320102", "玄武区", 7, 0), ("2024-02-01", "33", "330102", "上城区", 40, 2)]


def publish_births_mart(root, warehouse) -> None:
    con = duckdb.connect(str(warehouse))
    con.execute("CREATE SCHEMA IF NOT EXISTS marts")
    con.execute("CREATE OR REPLACE TABLE marts.births_by_month_division (birth_month DATE, province_code VARCHAR, "
                "birth_division_code VARCHAR, division_name_zh VARCHAR, births BIGINT, hukou_other_province BIGINT)")
    con.executemany("INSERT INTO marts.births_by_month_division VALUES (?, ?, ?, ?, ?, ?)", MART)
    con.close()
    exchange.publish_snapshot(root, entity="births_by_month_division", warehouse_path=warehouse,
                              relation="marts.births_by_month_division", run_id="run-1", standard_version="1.0.0")


def record_runs(root) -> None:
    """Two runs: 沪 rising from 5% to 30% quarantined (over 0.2: red), 苏 held back in the second."""
    t0 = dt.datetime(2026, 12, 1, 8, 0)
    for n, (sh_q, js_status) in enumerate([(5, "published"), (30, "rejected")], start=1):
        at = t0 + dt.timedelta(days=n)
        record_run(root, f"run-{n}", [
            {"started_at": at, "finished_at": at, "entity": "business_license", "source_id": "src_31",
             "province_code": "31", "delivery_sha256": "a" * 64, "status": "published", "rows_delivered": 100,
             "rows_quarantined": sh_q, "gate_success": True, "gate_summary": "passed",
             "top_reasons": [{"reason": "invalid_code", "field": "status_code", "rows": sh_q}]},
            {"started_at": at, "finished_at": at, "entity": "business_license", "source_id": "src_32",
             "province_code": "32", "delivery_sha256": "b" * 64, "status": js_status, "rows_delivered": 100,
             "rows_quarantined": 0, "gate_success": js_status == "published", "gate_summary": "passed",
             "message": None if js_status == "published" else "missing column QYMC"}])


@pytest.fixture
def pages(served):
    publish_births_mart(served.root, served.work / "warehouse.duckdb")
    record_runs(served.root)
    return served


@pytest.fixture
def approver(pages) -> TestClient:
    """A client logged in as an approver of province 32."""
    assert login(pages.client, pages.add("js-approver", "32", approver=True)).status_code == 303
    return pages.client


@pytest.fixture
def consumer(pages) -> TestClient:
    assert login(pages.client, pages.add("sh-health", "31")).status_code == 303
    return pages.client
