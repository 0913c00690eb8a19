"""Debian's headless chromium driven by Selenium 4 through Debian's chromedriver (never a downloaded
browser or driver: the paths are given, so Selenium Manager is not asked for one), and what the
browser tests read from it: console errors, the URLs a page loaded, screenshots, downloads."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WIDTH, HEIGHT = 1366, 1800
#: no network of its own: no QUIC, no component or safe-browsing updates, no sync, no first-run pings
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")
#: generous: a page is waited for, never timed (the machine is shared)
WAIT_SECONDS = 60

# a chart's data marks inside Vega's mark groups (g.role-mark): the shapes (bars, lines, points) and the
# text labels; the axes, their ticks and labels, legends and the frame are groups of other roles
MARKS_JS = """
const own = e => !e.closest('[class*="role-axis"], [class*="role-legend"]');
const marks = sel => Array.from(arguments[0].querySelectorAll(sel)).filter(own);
return [marks('svg g.role-mark path, svg g.role-mark rect, svg g.role-mark circle, svg g.role-mark line').length,
        marks('svg g.role-mark text').map(t => t.textContent.trim())];
"""


def start(downloads: Path) -> WebDriver:
    """A fresh headless chromium (its own profile under a temporary directory) that saves downloads
    into ``downloads`` and keeps every console message for :func:`console_errors`."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='tongban-chromium-')}")
    options.add_argument(f"--window-size={WIDTH},{HEIGHT}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False,
                                              "profile.default_content_setting_values.automatic_downloads": 1,
                                              "safebrowsing.enabled": False})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_window_size(WIDTH, HEIGHT)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads),
                                                            "eventsEnabled": True})
    return driver


def wait_for(driver: WebDriver, condition, what: str):
    return WebDriverWait(driver, WAIT_SECONDS).until(condition, message=f"waited for {what}")


def console_errors(driver: WebDriver) -> list[str]:
    """The SEVERE console messages since the last call (reading the log empties it)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def loaded_urls(driver: WebDriver) -> list[str]:
    """Every URL the current document loaded: itself and each resource (scripts, styles, images, fetches)."""
    return driver.execute_script(
        "return [location.href].concat(performance.getEntriesByType('resource').map(e => e.name));")


def foreign(urls: list[str], base: str) -> list[str]:
    """The URLs not on ``base``'s origin (scheme, host and port): a request that left the machine."""
    origin = urlsplit(base)[:2]
    return [u for u in urls if urlsplit(u)[:2] != origin and not u.startswith(("data:", "blob:", "about:"))]


def chart_marks(chart) -> tuple[int, list[str]]:
    """A chart element's drawn data marks: how many shapes, and the text labels (axes, ticks, legends and
    frame not counted)."""
    return chart.parent.execute_script(MARKS_JS, chart)


def screenshot(driver: WebDriver, path: Path) -> Path:
    """The whole page as a PNG: the window is stretched to the document's height for the shot."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(3):  # the window is taller than its viewport by a frame; grow until the page fits
        viewport, height = driver.execute_script(
            "return [window.innerHeight, Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)];")
        if viewport >= height:
            break
        driver.set_window_size(WIDTH, driver.get_window_size()["height"] + height - viewport)
    try:
        assert driver.save_screenshot(str(path)), f"no screenshot written to {path}"
    finally:
        driver.set_window_size(WIDTH, HEIGHT)
    return path


def table_rows(table) -> list[list[str]]:
    """A table as shown: its header row(s) and body rows, each cell's visible text."""
    rows = table.find_elements(By.CSS_SELECTOR, "tr")
    return [[cell.text.strip() for cell in row.find_elements(By.CSS_SELECTOR, "th, td")] for row in rows]


def downloaded(driver: WebDriver, downloads: Path, before: set[str]) -> Path:
    """The file a click just started downloading into ``downloads``, once it is complete."""
    def done(_):
        new = [p for p in downloads.iterdir() if p.name not in before]
        complete = [p for p in new if not p.name.endswith((".crdownload", ".tmp"))]
        return complete[0] if complete and not any(p.name.endswith(".crdownload") for p in new) else False

    return wait_for(driver, done, f"a download into {downloads}")


def read_csv(path: Path) -> list[list[str]]:
    text = path.read_bytes().decode("utf-8-sig")
    return [row for row in csv.reader(io.StringIO(text, newline=""))]
