"""Every page and filter under FastAPI's TestClient over a real small exchange: login, CSRF, logout,
bookmarkable filters, CSV equal to the table, small cells suppressed, no personal value anywhere,
usage for approvers only, English switch, and page views in the audit log."""

from __future__ import annotations

from pathlib import Path

import json
import re
import os
import stat

import pytest

from tests.serve.conftest import birth_rows, licence_rows
from tests.serve.pages.helpers import csrf_of, csv_rows, login, parse
from tongban.serve import audit, identity
from tongban.serve.reader import csv_safe
from tongban.serve.pages import session
from tongban.serve.pages.overview import freshness
from tongban.serve.pages.quality import grade
from tongban.standards.gate import threshold_for

PAGES = ["/", "/quality", "/births", "/licenses", "/resources", "/usage", "/resources/res_31_1"]
FILTERS = [{}, {"province": "32"}, {"entity": "business_license"}, {"from": "2024-01", "to": "2024-01"},
           {"from": "2024-02-01", "to": "2026-12-31", "province": "33"}, {"lang": "en"}, {"q": "目录31"}]


def test_every_page_redirects_to_login_when_not_logged_in(pages):
    for path in PAGES:
        r = pages.client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login"), path
    assert pages.client.get("/login").status_code == 200


@pytest.mark.parametrize("params", FILTERS, ids=lambda p: "&".join(f"{k}={v}" for k, v in p.items()) or "none")
def test_every_page_answers_every_filter(approver, params):
    for path in PAGES:
        r = approver.get(path, params=params)
        assert r.status_code == 200, (path, params, r.text[:500])
        assert "<form class=\"filters\" method=\"get\">" in r.text or path.startswith("/resources/")
        found = parse(r.text)
        assert found.tables, path
        for chart in found.charts:  # every chart is inline SVG with marks
            assert f'data-chart="{chart}"><svg' in r.text


def test_a_filter_it_does_not_understand_is_400_and_names_no_value(approver):
    for params in ({"province": "3x"}, {"from": "soon"}, {"entity": "nope"}, {"to": "2024-13"}):
        r = approver.get("/births", params=params)
        assert r.status_code == 400 and next(iter(params.values())) not in r.text


def test_every_csv_is_exactly_its_table(approver):
    for path in PAGES:
        for params in ({}, {"province": "32", "from": "2024-01"}):
            page = approver.get(path, params=params)
            found = parse(page.text)
            assert len(found.csv_links) == len(found.tables)
            for href in found.csv_links:
                table_id = href.rsplit("download=", 1)[1]
                r = approver.get(href)
                assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
                # exactly the cells shown, a formula-like one behind a quote (reader.csv_safe)
                assert csv_rows(r.text) == [[csv_safe(c) for c in row] for row in found.tables[table_id]], table_id
    assert approver.get("/births?download=nope").status_code == 404


def test_a_csv_cell_is_never_a_formula(approver):
    # a resource title the producer wrote as "+目录..." reaches the catalogue's CSV quoted
    text = approver.get("/resources?download=catalogue").text
    assert "'+目录310" in text and ",+目录" not in text


def test_small_birth_cells_are_shown_as_under_5_never_the_number(approver):
    page = approver.get("/births")
    tables = parse(page.text).tables
    month = tables["births_by_month"]
    assert ["2024-01", "上海市", "<5"] in month and ["2024-01", "江苏省", "12"] in month
    division = {row[0]: row[2] for row in tables["births_by_division"][1:]}
    assert division["黄浦区 (310101)"] == "<5" and division["上城区 (330102)"] == "40"
    assert not any(cell == "3" for t in tables.values() for row in t for cell in row)
    csv_text = approver.get("/births?download=births_by_month").text
    assert "<5" in csv_text and ",3\r\n" not in csv_text
    for chart_id in ("births_by_month", "births_by_division"):
        svg = page.text.split(f'data-chart="{chart_id}">', 1)[1].split("</figure>", 1)[0]
        assert "&lt;5" in svg, chart_id


def test_no_personal_value_on_any_page_or_csv(approver):
    personal = {r[1] for r in birth_rows()} | {r[2] for r in birth_rows()} | {r[3] for r in licence_rows()}
    texts = []
    for path in PAGES:
        for params in FILTERS:
            page = approver.get(path, params=params)
            texts.append(page.text)
            texts += [approver.get(href).text for href in parse(page.text).csv_links]
    leaked = sorted(v for v in personal if any(v in text for text in texts))
    assert leaked == []


def test_quality_rows_turn_red_over_the_threshold_and_held_deliveries_say_why(approver):
    page = approver.get("/quality")
    assert 'class="red"' in page.text
    tables = parse(page.text).tables
    scorecard = {row[2]: row for row in tables["scorecard"][1:]}
    assert scorecard["src_31"][6] == "30.0%" and scorecard["src_31"][7] == "10%"  # licences: the gate's 10%
    held = tables["held"]
    assert any("missing column QYMC" in row[-1] and row[3] == "已退回" for row in held[1:])  # rejected
    reasons = tables["top_reasons"]
    assert any(row[2] == "invalid_code" and row[3] == "登记状态" for row in reasons[1:]), reasons


def test_the_scorecard_grades_against_the_gates_own_threshold(pages):
    from tongban.standards.load import load_standards

    std = load_standards(Path(__file__).resolve().parents[3] / "standards")
    assert threshold_for(std, "data_resource", "js")[0] == 0.2  # the entity's default
    assert threshold_for(std, "data_resource", "zj")[0] == 0.95  # 浙江's override, with its reason
    assert grade(0.21, 0.2) == "red" and grade(0.16, 0.2) == "amber" and grade(0.1, 0.2) == ""


def test_usage_is_for_approvers_only(pages, consumer):
    assert consumer.get("/usage").status_code == 403
    assert consumer.get("/usage?download=reads").status_code == 403


def test_usage_shows_reads_per_consumer_and_refused_requests(pages, approver):
    token = pages.add("zj-stats", "33")
    assert pages.get("/api/v1/entities/business_license/rows", token).status_code == 200
    assert pages.get("/api/v1/entities/birth_registration/rows", token).status_code == 403
    tables = parse(approver.get("/usage").text).tables
    assert ["zj-stats", "营业执照", "1"] in [row[:2] + row[2:] for row in tables["reads"]] or \
        any(row[0] == "zj-stats" and row[2] == "1" for row in tables["reads"][1:])
    assert any(row[1] == "zj-stats" and row[3] == "403" for row in tables["refused"][1:])


def test_login_needs_the_csrf_token_and_a_valid_token(pages):
    client = pages.client
    token = pages.add("sh-health", "31")
    assert client.post("/login", data={"token": token}).status_code == 403  # no CSRF field
    form = client.get("/login")
    r = client.post("/login", data={"token": token, "csrf": "forged"}, follow_redirects=False)
    assert r.status_code == 403
    r = client.post("/login", data={"token": "not-a-token", "csrf": csrf_of(form.text)}, follow_redirects=False)
    assert r.status_code == 401 and client.get("/", follow_redirects=False).status_code == 303
    r = login(client, token)
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    entries = [e for e in audit.tail(50, url=pages.url) if e["payload"].get("endpoint") == "POST /login"]
    assert [e["payload"]["outcome"] for e in entries] == [403, 403, 401, 303]
    assert not any(token in json.dumps(e) or "not-a-token" in json.dumps(e) for e in entries)


def test_logout_needs_the_csrf_token_and_ends_the_session(pages, consumer):
    assert consumer.post("/logout", data={}).status_code == 403
    assert consumer.get("/").status_code == 200
    page = consumer.get("/")
    r = consumer.post("/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    assert r.status_code == 303
    assert consumer.get("/", follow_redirects=False).status_code == 303


def test_a_revoked_consumers_session_ends(pages, consumer):
    assert consumer.get("/births").status_code == 200
    identity.revoke_consumer("sh-health", url=pages.url)
    assert consumer.get("/births", follow_redirects=False).status_code == 303


def test_english_is_kept_in_the_session_and_the_links(approver):
    zh = approver.get("/births")
    assert "出生一件事" in zh.text and 'lang="zh-CN"' in zh.text
    en = approver.get("/births", params={"lang": "en"})
    assert "Births by month and province" in en.text and 'href="/licenses?lang=en"' in en.text
    assert "Shanghai" in en.text or "Jiangsu" in en.text  # the standard's English names of provinces
    assert "Births by month and province" in approver.get("/births").text  # kept without ?lang
    assert "出生一件事" in approver.get("/births", params={"lang": "zh"}).text


def test_page_views_are_audited_with_filter_names_never_values(pages, approver):
    approver.get("/births", params={"province": "32", "from": "2024-01"})
    (entry,) = [e for e in audit.tail(20, url=pages.url) if e["payload"].get("endpoint") == "GET /births"]
    assert entry["actor"] == "js-approver" and entry["payload"]["outcome"] == 200
    assert entry["payload"]["filters"] == ["province", "from"] and "2024" not in json.dumps(entry["payload"])


def test_the_session_secret_is_a_0600_file_outside_the_exchange(pages):
    path = session.secret_path()
    assert path.is_file() and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert not path.resolve().is_relative_to(pages.root.resolve())


def test_freshness_is_on_time_late_or_overdue_against_the_expected_period():
    assert [freshness(a, 7) for a in (0.5, 7, 7.1, 14, 14.1)] == ["on_time", "on_time", "late", "late", "overdue"]
    assert freshness(3, None) == "unknown"


def test_an_unchanged_file_read_again_is_not_a_new_delivery(approver):
    fresh = parse(approver.get("/").text).tables["freshness"]
    # both runs read the same file of each province: its delivery is the first run's
    assert {row[1]: row[2] for row in fresh[1:]} == {"上海市": "2026-12-02 08:00 UTC", "江苏省": "2026-12-02 08:00 UTC"}
    assert all(row[4] == "7" for row in fresh[1:])  # business_license: update_frequency_days 7


def test_english_pages_translate_run_statuses_and_industry_sections(pages, approver):
    from tongban.serve.pages.render import Words

    cjk = re.compile(r"[\u4e00-\u9fff]")
    std = pages.client.app.state.standards
    en, zh = Words(std, "en"), Words(std, "zh")
    assert en.section("C", "制造业") == "C Manufacturing" and zh.section("C", "制造业") == "C 制造业"
    assert en.status("held") == "held (over its threshold)" and zh.status("published") == "已发布"
    assert en.status("something_new") == "something_new" and en.status(None) == "—"
    for letter in "ABCDEFGHIJKLMNOPQRST":  # all twenty GB/T 4754 sections have an English name
        assert not cjk.search(en.section(letter, "门类"))
    quality = parse(approver.get("/quality", params={"lang": "en"}).text).tables
    scorecard = quality["scorecard"]
    assert {row[scorecard[0].index("Status")] for row in scorecard[1:]} == {"published", "rejected"}
    held = quality["held"]
    assert {row[held[0].index("Status")] for row in held[1:]} == {"rejected"}
    zh_card = parse(approver.get("/quality", params={"lang": "zh"}).text).tables["scorecard"]  # en is kept otherwise
    assert {row[zh_card[0].index("状态")] for row in zh_card[1:]} == {"已发布", "已退回"}


def test_usage_offers_only_the_filters_it_applies(approver):
    page = approver.get("/usage").text
    assert 'name="entity"' in page and 'name="province"' not in page
    assert 'name="province"' in approver.get("/births").text
