"""The browser tests' world: an exchange built by a real `tongban run` (Airflow, dbt, DuckDB, GX) on
small synthetic births and licences and the four real province catalogues, a consumer and an
approver registered with `tongban consumer add`, a real `tongban serve` (uvicorn) on a free localhost
port, and a fresh headless chromium per test (tests/browser/chrome.py). Screenshots go to the
repository's build/screenshots/ so a reviewer can look at them after `make test`."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from tests.browser import chrome
from tests.serve.conftest import TONGBAN, running_server, token_from_cli
from tests.workdirs import work_env
from tongban.common.config import settings

ROWS = 200  # per province and entity: enough births for division-months over the small-cell threshold
KEY = "tongban-browser-test-pseudonym-key-0123456789"
CATALOGUES = ("nju-websoft_CNPDS_shanghai_shanghai.json", "nju-websoft_CNPDS_jiangsu_jiangsu.json",
              "nju-websoft_CNPDS_zhejiang_zhejiang.json", "cqsss_ChinaOpenDataPortal_anhui_anhui.json")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"


@pytest.fixture(scope="session")
def exchange_env(tmp_path_factory) -> dict[str, str]:
    """The environment of a finished real run: its exchange, build and state directories."""
    work = tmp_path_factory.mktemp("browser-run")
    inbox = work / "inbox"
    (inbox / "opendata_catalogs").mkdir(parents=True)
    for name in CATALOGUES:
        (inbox / "opendata_catalogs" / name).symlink_to(settings().reference_dir / "opendata_catalogs" / name)
    env = {**os.environ, **work_env(work, inbox, KEY), "TONGBAN_STATE_URL": f"sqlite:///{work / 'state.sqlite'}"}
    for entity in ("births", "licenses"):
        subprocess.run([*TONGBAN, "sample", entity, "--rows", str(ROWS), "--out", str(inbox)], env=env, check=True,
                       capture_output=True, timeout=300)
    done = subprocess.run([*TONGBAN, "run"], env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return env


@pytest.fixture(scope="session")
def tokens(exchange_env) -> dict[str, str]:
    """A consumer (上海's health commission) and an approver (江苏), registered on the command line."""
    return {"consumer": token_from_cli(exchange_env, "sh-health", "--province", "31"),
            "approver": token_from_cli(exchange_env, "js-approver", "--province", "32", "--approver")}


@pytest.fixture(scope="session")
def server(exchange_env, tokens, tmp_path_factory) -> Iterator[str]:
    """`tongban serve` on a free localhost port (uvicorn); stopped after the session."""
    with running_server(exchange_env, tmp_path_factory.mktemp("browser-serve") / "serve.log") as base:
        yield base


@dataclass
class Browser:
    """A headless chromium pointed at the served app."""

    driver: WebDriver
    base: str
    downloads: Path
    shots: list[Path] = field(default_factory=list)

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    def screenshot(self, name: str) -> Path:
        self.shots.append(chrome.screenshot(self.driver, SCREENSHOTS / f"{name}.png"))
        return self.shots[-1]


@pytest.fixture(scope="session")
def cjk_font() -> None:
    """The pages are Chinese first: without a CJK font every screenshot shows boxes."""
    fonts = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True).stdout
    assert fonts.strip(), "no Chinese font for chromium: `make browser` installs fonts-noto-cjk"


@pytest.fixture
def browser(server, cjk_font, tmp_path) -> Iterator[Browser]:
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver = chrome.start(downloads)
    try:
        yield Browser(driver, server, downloads)
    finally:
        driver.quit()
