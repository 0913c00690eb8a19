"""/docs in the browser: Swagger UI draws the served exchange's API from scripts and styles the app
serves itself, with nothing fetched from another origin and no console error."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from tests.browser import chrome

pytestmark = pytest.mark.browser


def test_swagger_ui_draws_the_api_offline(browser):
    browser.open("/docs")
    driver = browser.driver
    title = chrome.wait_for(driver, lambda d: d.find_element(By.CSS_SELECTOR, ".swagger-ui .info .title"),
                            "Swagger UI's title")
    assert "tongban served exchange" in title.text
    operations = chrome.wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock"), "the operations")
    paths = {op.find_element(By.CSS_SELECTOR, ".opblock-summary-path").get_attribute("data-path")
             for op in operations}
    assert {"/api/v1/entities", "/api/v1/applications"} <= paths
    browser.screenshot("docs")
    assert chrome.foreign(chrome.loaded_urls(driver), browser.base) == []
    assert chrome.console_errors(driver) == []


def test_a_request_to_another_origin_and_a_failed_load_are_seen(browser):
    """The positive controls of the checks above: an image from another origin (the same server under
    another host name, so still nothing leaves the machine) is reported as foreign, and a missing
    image on the page's own origin as a console error."""
    browser.open("/docs")
    other = browser.base.replace("127.0.0.1", "localhost") + "/no-such-image.png"
    missing = browser.base + "/no-such-image.png"
    browser.driver.execute_script(
        "for (const src of arguments) { const i = new Image(); i.src = src; document.body.appendChild(i); }",
        other, missing)
    chrome.wait_for(browser.driver, lambda d: {other, missing} <= set(chrome.loaded_urls(d)), "both images' requests")
    assert chrome.foreign(chrome.loaded_urls(browser.driver), browser.base) == [other]
    errors: list[str] = []
    chrome.wait_for(browser.driver, lambda d: errors.extend(chrome.console_errors(d)) or errors, "a console error")
    assert any(message.startswith(f"{missing} - Failed to load resource") for message in errors), errors
