"""What a person sees, in headless Chromium against gunicorn serving the test database as in
production (DEBUG off, static files through WhiteNoise), with every request to another host
aborted: the admin is styled and /docs and /redoc render every operation."""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.callcenter.pages import is_local

CHROMIUM = Path("/usr/bin/chromium")
# Set to a folder (docs/screenshots) to keep the screenshots; the test always takes them.
SCREENSHOTS = os.environ.get("CALLCENTER_SCREENSHOTS", "")

pytestmark = pytest.mark.browser


@dataclass
class Visit:
    """What one browser context asked for and what went wrong in it."""

    blocked: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)


@pytest.fixture
def chromium(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), "Chromium is missing: run `python3 scripts/browsers.py ensure`"
    # Playwright's sync API runs an event loop in this thread; the fixtures' own database work
    # (teardown) happens after the browser is closed.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-background-networking"]
        )
        try:
            yield browser
        finally:
            browser.close()


def _offline_page(browser, visit: Visit):  # type: ignore[no-untyped-def]
    """A page whose every request to another host is aborted (and recorded): the network is off."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})

    def route(route) -> None:  # type: ignore[no-untyped-def]
        url = route.request.url
        if is_local(url):
            route.continue_()
        else:
            visit.blocked.append(url)
            route.abort("internetdisconnected")

    context.route("**/*", route)
    page = context.new_page()
    page.on("console", lambda message: message.type == "error" and visit.console_errors.append(message.text))  # type: ignore[func-returns-value]
    page.on("pageerror", lambda error: visit.console_errors.append(str(error)))
    page.on("response", lambda response: response.status >= 400 and visit.failed.append(response.url))  # type: ignore[func-returns-value]
    return page


def _screenshot(page, name: str, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    target = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    target.mkdir(parents=True, exist_ok=True)
    path = target / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    assert path.stat().st_size > 10_000  # a blank page compresses to almost nothing
    return path


def _operations_in_schema(server_url: str) -> int:
    with urllib.request.urlopen(f"{server_url}/schema?format=json", timeout=10) as response:
        schema = json.load(response)
    methods = {"get", "put", "post", "patch", "delete"}
    return sum(1 for item in schema["paths"].values() for method in item if method in methods)


class AdminInBrowserTests:
    def test_a_tenant_admin_logs_in_to_a_styled_admin_offline(self, alpha, web_server, chromium, tmp_path):
        visit = Visit()
        page = _offline_page(chromium, visit)
        base = f"http://alpha.localhost:{web_server.port}"

        page.goto(f"{base}/admin/login/")
        page.fill("#id_username", "admin")
        page.fill("#id_password", alpha.admin_password)
        page.click("input[type=submit]")
        page.wait_for_url(f"{base}/admin/")

        header = page.eval_on_selector("#header", "e => getComputedStyle(e).backgroundColor")
        sheets = page.evaluate("document.styleSheets.length")
        _screenshot(page, "admin", tmp_path)
        assert sheets >= 2, sheets
        assert header not in ("rgba(0, 0, 0, 0)", "transparent"), header  # unstyled: no background
        assert "Alpha Ltd" in page.content()
        assert not visit.blocked, visit.blocked
        assert not visit.failed, visit.failed
        assert not visit.console_errors, visit.console_errors


class ApiDocsInBrowserTests:
    def test_swagger_ui_renders_every_operation_offline(self, alpha, web_server, chromium, tmp_path):
        visit = Visit()
        page = _offline_page(chromium, visit)
        expected = _operations_in_schema(f"http://localhost:{web_server.port}")

        page.goto(f"http://localhost:{web_server.port}/docs")
        page.wait_for_selector(".opblock", timeout=30_000)
        rendered = page.locator(".opblock").count()

        _screenshot(page, "docs", tmp_path)
        assert rendered == expected, (rendered, expected)
        assert "Callcenter API" in page.inner_text(".info")
        assert not visit.blocked, visit.blocked
        assert not visit.failed, visit.failed
        assert not visit.console_errors, visit.console_errors

    def test_redoc_renders_every_operation_offline(self, alpha, web_server, chromium, tmp_path):
        visit = Visit()
        page = _offline_page(chromium, visit)
        expected = _operations_in_schema(f"http://localhost:{web_server.port}")

        page.goto(f"http://localhost:{web_server.port}/redoc")
        page.wait_for_selector("[data-section-id^='operation/']", timeout=30_000)
        rendered = page.locator("[data-section-id^='operation/']").count()

        assert rendered == expected, (rendered, expected)
        assert not visit.blocked, visit.blocked
        assert not visit.failed, visit.failed
        assert not visit.console_errors, visit.console_errors
        assert all(urlsplit(url).hostname for url in visit.blocked)
