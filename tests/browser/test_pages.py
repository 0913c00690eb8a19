"""The dashboard in headless chromium over a real `tongban serve` of a real run (tests/browser/conftest.py):
log in through the form, every page with its charts drawn and tables shown, a filter changed, a CSV
downloaded and compared with the table it came from, the English switch, logout — with no console
error and nothing loaded from another origin, and a screenshot of each page in build/screenshots/."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.browser import chrome

pytestmark = pytest.mark.browser

#: the pages and their screenshot names; /usage is for approvers, so the walk logs in as one
PAGES = {"overview": "/", "quality": "/quality", "births": "/births", "licenses": "/licenses",
         "resources": "/resources", "usage": "/usage"}
SMALL_CELL = "<5"  # how a suppressed count (1-4 births) is shown, in a table or as a chart's label
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")  # a CSV cell starting so gets a leading ' (OWASP)

TABLES_JS = """
return Array.from(document.querySelectorAll('table.data')).map(t => ({
  id: t.dataset.table,
  rows: Array.from(t.rows).map(r => Array.from(r.cells).map(c => c.innerText.trim()))}));
"""


def log_in(browser, token: str, path: str = "/") -> None:
    """Open ``path``, be sent to the login form, post the token there and land back on ``path``."""
    browser.open(path)
    driver = browser.driver
    chrome.wait_for(driver, lambda d: urlsplit(d.current_url).path == "/login", "the redirect to /login")
    driver.find_element(By.CSS_SELECTOR, "form.login input[name=token]").send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "form.login button[type=submit]").click()
    chrome.wait_for(driver, lambda d: urlsplit(d.current_url).path == path, f"{path} after logging in")


def status(driver) -> int:
    """The HTTP status the current document was answered with."""
    return driver.execute_script("return performance.getEntriesByType('navigation')[0].responseStatus;")


def tables(driver) -> dict[str, list[list[str]]]:
    """Every data table on the page as shown (header row first), by its data-table id."""
    return {t["id"]: t["rows"] for t in driver.execute_script(TABLES_JS)}


def column(rows: list[list[str]], header: str) -> list[str]:
    at = rows[0].index(header)
    return [row[at] for row in rows[1:]]


def assert_charts_drew(driver) -> list[str]:
    """Every chart on the page is an inline SVG whose data marks (bars, lines, points) were drawn; a
    chart may draw only "<5" labels where every cell of its table is a suppressed small one."""
    shown = tables(driver)
    ids = []
    for figure in driver.find_elements(By.CSS_SELECTOR, "figure.chart"):
        chart_id = figure.get_attribute("data-chart")
        assert figure.find_elements(By.CSS_SELECTOR, ":scope > svg"), f"chart {chart_id} has no inline svg"
        shapes, labels = chrome.chart_marks(figure)
        if shapes == 0:
            counts = [cell for row in shown.get(chart_id, [[]])[1:] for cell in row[-1:]]
            assert labels and set(labels) == {SMALL_CELL} and set(counts) == {SMALL_CELL}, \
                f"chart {chart_id} drew no marks (labels {labels[:5]})"
        ids.append(chart_id)
    return ids


def assert_clean(browser) -> None:
    """No console error and no request to another origin since the last check."""
    assert chrome.console_errors(browser.driver) == []
    assert chrome.foreign(chrome.loaded_urls(browser.driver), browser.base) == []


def assert_drawn_clean(browser, shot: str) -> None:
    """The page's charts drew, its screenshot is taken, and it was clean."""
    assert_charts_drew(browser.driver)
    browser.screenshot(shot)
    assert_clean(browser)


def test_the_login_form_refuses_an_unknown_token(browser):
    browser.open("/login")
    driver = browser.driver
    browser.screenshot("login")
    driver.find_element(By.CSS_SELECTOR, "form.login input[name=token]").send_keys("tb_not-a-token")
    driver.find_element(By.CSS_SELECTOR, "form.login button[type=submit]").click()
    alert = chrome.wait_for(driver, lambda d: d.find_element(By.CSS_SELECTOR, "p.error[role=alert]"), "the error")
    assert alert.text and urlsplit(driver.current_url).path == "/login" and status(driver) == 401
    browser.open("/births")
    assert urlsplit(driver.current_url).path == "/login"  # still not logged in


@pytest.mark.parametrize("name", PAGES)
def test_every_page_draws_its_charts_and_tables(browser, tokens, name):
    path = PAGES[name]
    log_in(browser, tokens["approver"], path)
    driver = browser.driver
    assert status(driver) == 200
    assert driver.find_element(By.CSS_SELECTOR, "header.top nav a.here").get_attribute("href").endswith(path)
    charts = assert_charts_drew(driver)
    shown = tables(driver)
    assert shown and all(rows[0] for rows in shown.values()), f"{name}: no table with a header"
    assert len(driver.find_elements(By.CSS_SELECTOR, "a.csv")) == len(shown)
    if name != "usage":  # the audit log's page has tables only
        assert charts, f"{name}: no chart"
    browser.screenshot(name)
    assert_clean(browser)


def test_a_filter_narrows_the_page_and_lands_in_the_query_string(browser, tokens):
    log_in(browser, tokens["consumer"], "/births")
    driver = browser.driver
    before = tables(driver)["births_by_month"]
    assert set(column(before, "省份")) > {"上海市"}  # the unfiltered page shows other provinces too

    form = driver.find_element(By.CSS_SELECTOR, "form.filters")
    Select(form.find_element(By.NAME, "province")).select_by_value("31")
    driver.execute_script("arguments[0].value = '2024-01';", form.find_element(By.NAME, "from"))
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    chrome.wait_for(driver, lambda d: "province=31" in d.current_url, "the filtered page")

    assert urlsplit(driver.current_url).path == "/births"
    assert parse_qs(urlsplit(driver.current_url).query) == {"province": ["31"], "from": ["2024-01"]}
    after = tables(driver)["births_by_month"]
    assert after != before and len(after) > 1
    assert set(column(after, "省份")) == {"上海市"}
    assert min(column(after, "月份")) >= "2024-01"
    assert Select(driver.find_element(By.CSS_SELECTOR, "form.filters select[name=province]")
                  ).first_selected_option.get_attribute("value") == "31"
    assert_drawn_clean(browser, "births-filtered")


def test_each_csv_download_is_the_table_shown(browser, tokens):
    log_in(browser, tokens["consumer"], "/births")
    browser.open("/births?province=32")
    driver = browser.driver
    shown = tables(driver)
    links = {a.get_attribute("href"): a for a in driver.find_elements(By.CSS_SELECTOR, "a.csv")}
    assert len(links) == len(shown) >= 2
    for href, link in links.items():
        table_id = parse_qs(urlsplit(href).query)["download"][0]
        assert parse_qs(urlsplit(href).query)["province"] == ["32"], href  # the CSV of the filtered view
        before = {p.name for p in browser.downloads.iterdir()}
        link.click()
        path = chrome.downloaded(driver, browser.downloads, before)
        rows = chrome.read_csv(path)
        expected = [[("'" + cell) if cell.startswith(FORMULA_START) else cell for cell in row]
                    for row in shown[table_id]]
        assert rows == expected, f"{path.name} differs from table {table_id}"
    assert_clean(browser)


def test_a_catalogue_entry_opens_its_detail(browser, tokens):
    log_in(browser, tokens["consumer"], "/resources")
    driver = browser.driver
    link = driver.find_element(By.CSS_SELECTOR, 'table.data[data-table="catalogue"] tbody a')
    title, href = link.text, link.get_attribute("href")
    assert title and urlsplit(href).path.startswith("/resources/")
    link.click()
    chrome.wait_for(driver, lambda d: d.current_url == href, "the resource's page")
    assert status(driver) == 200 and title in driver.find_element(By.TAG_NAME, "h1").text
    (rows,) = tables(driver).values()
    assert title in column(rows, rows[0][1])  # the field/value table holds the title among its values
    browser.screenshot("resource-detail")
    assert_clean(browser)


def test_the_english_switch_keeps_the_view(browser, tokens):
    log_in(browser, tokens["consumer"], "/licenses")
    driver = browser.driver
    browser.open("/licenses?province=33")
    driver.find_element(By.CSS_SELECTOR, "header.top a.lang").click()
    chrome.wait_for(driver, lambda d: "lang=en" in d.current_url, "the English page")
    assert parse_qs(urlsplit(driver.current_url).query) == {"province": ["33"], "lang": ["en"]}
    assert driver.find_element(By.TAG_NAME, "h1").text == "Business licences"
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    assert_drawn_clean(browser, "licenses-en")


def test_usage_is_for_approvers_only(browser, tokens):
    log_in(browser, tokens["consumer"], "/")
    browser.open("/usage")
    driver = browser.driver
    assert status(driver) == 403 and not tables(driver)
    errors = chrome.console_errors(driver)
    assert len(errors) == 1 and "403" in errors[0]


def test_logout_ends_the_session(browser, tokens):
    log_in(browser, tokens["consumer"], "/resources")
    driver = browser.driver
    assert chrome.wait_for(driver, lambda d: d.get_cookie("tongban_session"), "the session cookie")["httpOnly"]
    driver.find_element(By.CSS_SELECTOR, "form.logout button[type=submit]").click()
    chrome.wait_for(driver, lambda d: urlsplit(d.current_url).path == "/login", "the login page after logout")
    browser.open("/resources")
    assert urlsplit(driver.current_url).path == "/login"  # the page needs a login again
    assert not driver.find_elements(By.CSS_SELECTOR, "form.logout")
    assert_clean(browser)


def test_a_chart_without_its_marks_is_reported(browser, tokens):
    """The positive control of the chart check: the same page with one chart's bars removed fails it."""
    log_in(browser, tokens["consumer"], "/licenses")
    driver = browser.driver
    assert_charts_drew(driver)
    removed = driver.execute_script("""
        const marks = document.querySelectorAll('figure.chart[data-chart="licenses_by_section"] svg g.role-mark > *');
        marks.forEach(m => m.remove());
        return marks.length;""")
    assert removed > 0
    with pytest.raises(AssertionError, match="chart licenses_by_section drew no marks"):
        assert_charts_drew(driver)
