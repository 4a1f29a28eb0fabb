from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django_tenants.utils import schema_context

from dashboard.services import supervisor_create

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Route

SUPERVISOR_PASSWORD = "supervisor-pw-for-tests"


def forced_login(host: str, schema_name: str, username: str, **client_options) -> Client:
    """A logged-in browser without the password hash round; the session lives in ``schema_name``."""
    browser = Client(HTTP_HOST=host, **client_options)
    with schema_context(schema_name):
        browser.force_login(get_user_model().objects.get(username=username))
    return browser


def make_staffing_study(study: dict[str, object]) -> None:
    """A finished staffing run in the current schema, with ``study`` as ``simulate --staffing``
    stores it (simulation/staffing.py)."""
    from simulation.models import SimulationRun

    SimulationRun.objects.create(
        seed=1,
        strategy="longest_idle",
        rate_per_second=1,
        time_scale=1,
        kind=SimulationRun.Kind.STAFFING,
        clock=SimulationRun.Clock.VIRTUAL,
        status=SimulationRun.Status.FINISHED,
        report={"staffing": study},
    )


@pytest.fixture
def users() -> Iterator[list[tuple[str, str]]]:
    """Users a test creates in a tenant schema, as (schema, username): removed afterwards (the
    per-test reset leaves the auth tables alone)."""
    created: list[tuple[str, str]] = []
    yield created
    for schema_name, username in created:
        with schema_context(schema_name):
            get_user_model().objects.filter(username=username).delete()


@pytest.fixture
def alpha_supervisor(alpha, users) -> str:
    with schema_context(alpha.schema_name):
        supervisor_create(username="sup", password=SUPERVISOR_PASSWORD)
    users.append((alpha.schema_name, "sup"))
    return "sup"


@pytest.fixture
def alpha_watcher(alpha, users) -> str:
    """A user who may watch the dashboard but not operate it."""
    with schema_context(alpha.schema_name):
        user = get_user_model().objects.create_user(username="watcher", password="watcher-pw")
        user.user_permissions.add(Permission.objects.get(codename="view_dashboard"))
    users.append((alpha.schema_name, "watcher"))
    return "watcher"


@pytest.fixture
def alpha_stranger(alpha, users) -> str:
    """A user of alpha with no dashboard permission."""
    with schema_context(alpha.schema_name):
        get_user_model().objects.create_user(username="stranger", password="stranger-pw")
    users.append((alpha.schema_name, "stranger"))
    return "stranger"


@pytest.fixture
def supervisor_browser(alpha, alpha_supervisor) -> Client:
    return forced_login("alpha.localhost", alpha.schema_name, alpha_supervisor)


# ---------- browser tests ----------

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"


@dataclass
class LiveServer:
    port: int

    def url(self, host: str, path: str = "/") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture(scope="session")
def tenant_live_server(_session_tenants, django_db_blocker) -> Iterator[LiveServer]:
    """The project over real HTTP on 127.0.0.1 (as pytest-django's ``live_server``, but without its
    per-test flush, which would drop the session's tenants). Static files come from WhiteNoise and
    the collected, hashed files, as in production. Tenants are reached by host name:
    ``alpha.localhost:<port>``."""
    from django.test.testcases import LiveServerThread

    with django_db_blocker.unblock():
        # No static handler: any callable taking the application will do (WhiteNoise serves the files).
        thread = LiveServerThread("127.0.0.1", lambda application: application, port=0)  # type: ignore[arg-type]
        thread.daemon = True
        thread.start()
        thread.is_ready.wait()
        if thread.error:
            raise thread.error
        try:
            yield LiveServer(port=thread.port)
        finally:
            thread.terminate()
            # Request threads of kept-alive browser connections are daemons that may still hold a
            # database connection; end those sessions so that the test database can be dropped.
            from django.db import connection

            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread, so Django takes the test's own
    # (synchronous) database calls for calls from async code and refuses them without this.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-background-networking"]
        )
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class BrowserSession:
    """A browser context with every request outside this machine refused (and remembered), and
    every script error of the page remembered: a test fails on either."""

    context: BrowserContext
    page: Page
    foreign_requests: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


def _is_loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host in ("localhost", "127.0.0.1", "::1") or host.endswith(".localhost")


def open_browser(chromium: Browser, *, color_scheme: str = "light") -> BrowserSession:
    from playwright.sync_api import expect

    context = chromium.new_context(viewport={"width": 1440, "height": 900}, color_scheme=color_scheme)  # type: ignore[arg-type]
    context.set_default_timeout(20_000)
    expect.set_options(timeout=20_000)  # a shared machine may be slow: wait generously for states
    session = BrowserSession(context=context, page=context.new_page())

    def guard(route: Route) -> None:
        if _is_loopback(route.request.url):
            route.continue_()
        else:
            session.foreign_requests.append(route.request.url)
            route.abort()

    context.route("**/*", guard)
    session.page.on("pageerror", lambda error: session.page_errors.append(str(error)))

    def console(message: ConsoleMessage) -> None:
        # The admin's pages name no icon, so Chromium asks for /favicon.ico (a 404): not the page's fault.
        if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
            session.page_errors.append(f"{message.text} ({message.location.get('url')})")

    session.page.on("console", console)
    return session


@pytest.fixture
def browser_session(chromium) -> Iterator[BrowserSession]:
    session = open_browser(chromium)
    try:
        yield session
    finally:
        session.context.close()
    assert session.foreign_requests == [], "the page tried to load from another host"
    assert session.page_errors == [], "the page logged errors"
