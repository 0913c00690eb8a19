"""The pages over one real `tongban run` (Airflow, dbt, DuckDB, GX) on small synthetic samples of
births and licences: the marts reach the births and licences pages with charts, no raw personal
value of the deliveries is on any page or CSV, and each page is saved as HTML under the work dir
(build/screenshots/ takes the browser's; these are for a quick look)."""

from __future__ import annotations

import pytest

from tests.serve.pages.helpers import login, parse
from tests.serve.test_real_run import _delivered, real  # noqa: F401 — the module-scoped real run, shared

PAGES = ["/", "/births", "/licenses", "/resources", "/quality", "/usage"]


@pytest.fixture(scope="module")
def logged_in(real):  # noqa: F811 — the imported fixture, by name
    """The real run's client (one `tongban run` for this module), logged in as 苏's approver."""
    assert login(real["client"], real["tokens"]["js"]).status_code == 303
    return real


def test_the_marts_reach_the_pages_with_charts(logged_in):
    run = logged_in
    client = run["client"]
    births = client.get("/births")
    assert births.status_code == 200
    tables = parse(births.text).tables
    assert len(tables["births_by_month"]) > 1 and len(tables["births_by_division"]) > 1
    assert len(tables["services"]) > 1  # the joined-up services, in the standard's words
    assert "<svg" in births.text and "births_by_month_division v1" in births.text
    licences = parse(client.get("/licenses").text).tables
    assert len(licences["licenses_by_month"]) > 1 and len(licences["licenses_by_section"]) > 1
    overview = parse(client.get("/").text).tables
    assert any(row[3] == "江苏省" for row in overview["rows_per_province"][1:])
    assert any(row[1] == "江苏省" and row[5] in ("按时", "迟交", "逾期") for row in overview["freshness"][1:])
    quality = parse(client.get("/quality").text).tables
    assert len(quality["scorecard"]) > 1


def test_no_raw_personal_value_of_the_deliveries_on_any_page(logged_in):
    run = logged_in
    client = run["client"]
    raw = {v for r in _delivered(run["inbox"], "births") for k, v in r.items()
           if k in ("CSYXZMBH", "XM", "MQXM", "MQSFZH", "FQSFZH", "LXDH") and v and len(v) > 1}
    raw |= {r["FDDBR"] for r in _delivered(run["inbox"], "licenses") if r.get("FDDBR") and len(r["FDDBR"]) > 1}
    texts = []
    for path in PAGES:
        page = client.get(path)
        assert page.status_code == 200, path
        (run["work"] / f"page{path.replace('/', '_') or '_'}.html").write_text(page.text, encoding="utf-8")
        texts += [page.text] + [client.get(href).text for href in parse(page.text).csv_links]
    assert sorted(v for v in raw if any(v in t for t in texts)) == []
