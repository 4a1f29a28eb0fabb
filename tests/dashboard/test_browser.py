"""The dashboard and the tenant admin in a real browser (headless Chromium through Playwright),
against the project served over HTTP. Every request to another host is refused and fails the test;
so does any script error. Tests wait for states (Playwright's ``expect`` polls), never for time.
Screenshots go to ``test-artifacts/screenshots/``."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest
from django.contrib.auth import get_user_model
from django_tenants.utils import schema_context
from playwright.sync_api import Page, expect

from agents.models import Agent, AgentType
from calls.models import Call
from calls.services import call_complete
from simulation.models import SimulationRun
from tests.dashboard.conftest import (
    SUPERVISOR_PASSWORD,
    BrowserSession,
    LiveServer,
    make_staffing_study,
    open_browser,
)
from tests.factories import TEST_ACTOR, make_agent, make_call

pytestmark = pytest.mark.browser


def log_in(page: Page, server: LiveServer, *, host: str = "alpha.localhost", username: str, password: str) -> None:
    page.goto(server.url(host, "/dashboard/"))
    expect(page).to_have_url(re.compile(r"/dashboard/login/"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#live-text")).to_contain_text("Live")


def log_in_admin(page: Page, server: LiveServer, *, password: str, host: str = "alpha.localhost") -> None:
    page.goto(server.url(host, "/admin/login/?next=/admin/"))
    page.locator("#id_username").fill("admin")
    page.locator("#id_password").fill(password)
    page.locator("input[type=submit]").click()
    expect(page.locator("#site-name")).to_contain_text("Callcenter")


def row(page: Page, agent: Agent):
    return page.locator(f'tr[data-agent-id="{agent.id}"]')


def eventually(check: Callable[[], bool], *, within: float = 20.0, what: str = "") -> None:
    """Poll ``check`` until it holds (a generous deadline: the machine may be busy)."""
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"not reached within {within} s: {what}"
        time.sleep(0.1)


class DashboardBrowserTests:
    def test_it_logs_in_and_shows_a_call_appear_get_assigned_and_complete(
        self, alpha, alpha_supervisor, tenant_live_server, browser_session: BrowserSession
    ):
        page = browser_session.page
        with schema_context(alpha.schema_name):
            ana = make_agent(name="Ana Torres")
        log_in(page, tenant_live_server, username=alpha_supervisor, password=SUPERVISOR_PASSWORD)
        expect(row(page, ana).locator(".status")).to_have_text("Available")

        with schema_context(alpha.schema_name):
            make_agent(name="Luis Vidal", status=Agent.Status.BREAK)
            call = make_call(call_type="llamada_tipo_2")
            waiting = make_call(call_type="llamada_tipo_3", priority=5)

        expect(row(page, ana).locator(".status")).to_have_text("On a call")
        expect(row(page, ana).locator("td").nth(4)).to_have_text("Llamada tipo 2")
        expect(page.locator("#queue-depth")).to_have_text("1")
        expect(page.locator("#queue-body tr")).to_have_text(re.compile(r"Llamada tipo 3\s*5"))
        expect(page.locator('[data-kpi="assigned"] .value')).to_have_text("1")

        with schema_context(alpha.schema_name):
            call_complete(call_id=call.id, outcome="OK", actor=TEST_ACTOR)

        # She takes the waiting call at once; the first one counts among today's calls.
        expect(row(page, ana).locator("td").nth(4)).to_have_text("Llamada tipo 3")
        expect(row(page, ana).locator("td").nth(6)).to_have_text("1")
        expect(page.locator("#queue-depth")).to_have_text("0")
        expect(page.locator('[data-kpi="completed"] .value')).to_have_text("1")
        with schema_context(alpha.schema_name):
            call_complete(call_id=waiting.id, outcome="KO", actor=TEST_ACTOR)
        expect(row(page, ana).locator(".status")).to_have_text("Available")
        expect(row(page, ana).locator("td").nth(7)).to_have_text("50 %")
        browser_session.screenshot("dashboard-call-lifecycle")

    def test_it_changes_an_agent_s_status_from_the_board_and_the_engine_uses_it(
        self, alpha, alpha_supervisor, tenant_live_server, browser_session: BrowserSession
    ):
        page = browser_session.page
        with schema_context(alpha.schema_name):
            ana = make_agent(name="Ana Torres")
        log_in(page, tenant_live_server, username=alpha_supervisor, password=SUPERVISOR_PASSWORD)

        # By keyboard: focus the button, press Enter.
        row(page, ana).get_by_role("button", name="Set Ana Torres Break").focus()
        page.keyboard.press("Enter")

        expect(row(page, ana).locator(".status")).to_have_text("Break")
        with schema_context(alpha.schema_name):
            assert Agent.objects.get(id=ana.id).status == Agent.Status.BREAK
            call = make_call()
            assert call.status == Call.Status.QUEUED  # the engine passes her over
        expect(page.locator("#queue-depth")).to_have_text("1")

        row(page, ana).get_by_role("button", name="Set Ana Torres Available").click()

        expect(row(page, ana).locator(".status")).to_have_text("On a call")  # she took the waiting call
        with schema_context(alpha.schema_name):
            assert Call.objects.get(id=call.id).agent_id == ana.id

        # Busy: the board asks before ending her call.
        page.once("dialog", lambda dialog: dialog.accept())
        row(page, ana).get_by_role("button", name="Set Ana Torres Offline").click()

        expect(row(page, ana).locator(".status")).to_have_text("Offline")
        with schema_context(alpha.schema_name):
            assert Call.objects.get(id=call.id).end_reason == "agent_forced_status"

    def test_it_changes_an_agent_s_status_from_the_admin_and_the_board_and_engine_follow(
        self, alpha, tenant_live_server, browser_session: BrowserSession
    ):
        page = browser_session.page
        with schema_context(alpha.schema_name):
            ana = make_agent(name="Ana Torres")
        log_in_admin(page, tenant_live_server, password=alpha.admin_password)

        page.goto(tenant_live_server.url("alpha.localhost", "/admin/agents/agent/"))
        page.locator(f'input[name="_selected_action"][value="{ana.id}"]').check()
        page.locator('select[name="action"]').select_option("make_break")
        page.get_by_role("button", name="Go").click()

        expect(page.locator(".messagelist")).to_contain_text("1 agent(s) set BREAK.")
        with schema_context(alpha.schema_name):
            assert make_call().status == Call.Status.QUEUED
        page.goto(tenant_live_server.url("alpha.localhost", "/dashboard/"))  # the admin is a supervisor too
        expect(row(page, ana).locator(".status")).to_have_text("Break")
        expect(page.locator("#queue-depth")).to_have_text("1")

    def test_it_starts_and_stops_a_simulation_and_shows_it_playing(
        self, alpha, alpha_supervisor, tenant_live_server, browser_session: BrowserSession, celery_worker
    ):
        page = browser_session.page
        log_in(page, tenant_live_server, username=alpha_supervisor, password=SUPERVISOR_PASSWORD)
        form = page.locator("#sim-form")
        form.get_by_label("Agents").fill("6")
        form.get_by_label("Calls per hour").fill("900")
        form.get_by_label("Time scale").fill("20")
        form.get_by_label("Seed").fill("11")

        form.get_by_role("button", name="Start simulation").click()

        expect(page.locator("#sim-badge")).to_have_text("Running")
        expect(page.get_by_role("button", name="Stop simulation")).to_be_visible()
        expect(page.locator("#board-body tr")).to_have_count(6)
        # Calls arrive, agents take them, calls complete by themselves (the Celery worker).
        expect(page.locator("#board-body .st-BUSY").first).to_be_visible(timeout=30_000)
        expect(page.locator('[data-kpi="completed"] .value')).not_to_have_text("0", timeout=60_000)
        expect(page.locator("#sim-status")).to_contain_text("calls arrived")
        browser_session.screenshot("dashboard-simulation-running")

        page.get_by_role("button", name="Stop simulation").click()

        # No more arrivals; the calls in progress finish on their own, meanwhile the run is draining.
        expect(page.locator("#sim-badge")).to_have_text(re.compile(r"^(Draining|Stopped)$"))
        expect(form.get_by_role("button", name="Start simulation")).to_be_visible()
        expect(page.locator("#sim-badge")).to_have_text("Stopped", timeout=120_000)
        expect(page.locator("#sim-status")).to_contain_text(" 0 in progress")
        with schema_context(alpha.schema_name):
            run = SimulationRun.objects.get(source="dashboard")
            assert run.status == SimulationRun.Status.STOPPED and run.seed == 11
            arrived = Call.objects.filter(simulation_run=run).count()
            assert arrived >= 1
            from simulation.control import simulation_live_advance

            # A tick that comes after the stop adds nothing.
            assert simulation_live_advance(run_id=run.id, sequence=arrived, offset=0.0) is None
            assert Call.objects.filter(simulation_run=run).count() == arrived

    def test_it_uses_the_matrix_edited_in_the_admin_for_the_next_simulated_call(
        self, alpha, tenant_live_server, browser_session: BrowserSession
    ):
        from assignment.services.config import routing_config
        from simulation.services import simulated_call_finish

        page = browser_session.page
        log_in_admin(page, tenant_live_server, password=alpha.admin_password)
        page.goto(tenant_live_server.url("alpha.localhost", "/admin/assignment/conversionrate/"))
        cells = page.locator("#conversion-matrix input[type=number]")
        expect(cells).to_have_count(16)
        for index in range(16):
            cells.nth(index).fill("1")  # every simulated call ends OK
        page.get_by_role("button", name="Save").click()
        expect(page.locator(".messagelist")).to_contain_text("Conversion matrix saved.")

        with schema_context(alpha.schema_name):
            # Other processes see a configuration change within a second (their snapshot's age).
            eventually(lambda: set(routing_config().p_ok.values()) == {1.0}, what="the new matrix")
            make_agent(name="Ana Torres", agent_type="agente_tipo_2", simulated=True)
            run = SimulationRun.objects.create(seed=5, strategy="longest_idle", rate_per_second=1, time_scale=1)
            call = make_call(call_type="llamada_tipo_4", simulation_run=run, simulation_sequence=0)
            assert simulated_call_finish(call_id=call.id)
            assert Call.objects.get(id=call.id).outcome == Call.Outcome.OK  # p = 0.04 before the edit
        page.goto(tenant_live_server.url("alpha.localhost", "/dashboard/"))
        observed = page.locator("#heatmap > div").nth(1)
        expect(observed.locator("td.cell:not(.none)")).to_have_text(["1.00"])
        expect(page.locator("#heatmap > div").nth(0).locator("td.cell").first).to_have_text("1.00")

    def test_it_refuses_tenant_a_s_user_on_tenant_b_s_dashboard_and_admin(
        self, alpha, beta, alpha_supervisor, tenant_live_server, browser_session: BrowserSession
    ):
        page = browser_session.page
        log_in(page, tenant_live_server, username=alpha_supervisor, password=SUPERVISOR_PASSWORD)

        page.goto(tenant_live_server.url("beta.localhost", "/dashboard/"))
        expect(page).to_have_url(re.compile(r"beta\.localhost:\d+/dashboard/login/"))
        expect(page.locator("main")).to_contain_text("Beta Ltd")
        page.goto(tenant_live_server.url("beta.localhost", "/admin/"))
        expect(page).to_have_url(re.compile(r"beta\.localhost:\d+/admin/login/"))

        page.goto(tenant_live_server.url("beta.localhost", "/dashboard/login/"))
        page.get_by_label("Username").fill(alpha_supervisor)
        page.get_by_label("Password").fill(SUPERVISOR_PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("alert")).to_contain_text("did not match")
        page.goto(tenant_live_server.url("beta.localhost", "/admin/login/"))
        page.locator("#id_username").fill("admin")
        page.locator("#id_password").fill(alpha.admin_password)
        page.locator("input[type=submit]").click()
        expect(page.locator(".errornote")).to_be_visible()

    def test_it_keeps_500_agents_on_the_board_updating_rows_in_place(
        self, alpha, alpha_supervisor, tenant_live_server, browser_session: BrowserSession
    ):
        page = browser_session.page
        with schema_context(alpha.schema_name):
            types = list(AgentType.objects.order_by("slug"))
            Agent.objects.bulk_create(
                Agent(name=f"Agent {i:03d}", agent_type=types[i % len(types)], status=Agent.Status.OFFLINE)
                for i in range(498)
            )
            first = make_agent(name="Agent 498")
            make_agent(name="Agent 499")
        log_in(page, tenant_live_server, username=alpha_supervisor, password=SUPERVISOR_PASSWORD)
        expect(page.locator("#board-body tr")).to_have_count(500)

        # A row is the same element from one update to the next (the board is not rebuilt).
        row(page, first).evaluate("tr => { tr.dataset.probe = 'kept' }")
        updated = page.evaluate("document.body.dataset.updatedAt")
        with schema_context(alpha.schema_name):
            make_call()
        expect(page.locator("body")).not_to_have_attribute("data-updated-at", updated)
        expect(row(page, first).locator(".status")).to_have_text("On a call")
        expect(row(page, first)).to_have_attribute("data-probe", "kept")

        # Filter by status, sort by a column: both with the keyboard.
        page.locator("#filter-status").focus()
        page.locator("#filter-status").select_option("AVAILABLE")
        expect(page.locator("#agent-count")).to_have_text("1 of 500")
        expect(page.locator("#board-body tr:not([hidden])")).to_have_count(1)
        page.locator("#filter-status").select_option("")
        page.locator('button[data-sort="name"]').focus()
        page.keyboard.press("Enter")
        expect(page.locator("th[aria-sort]")).to_have_attribute("aria-sort", "descending")
        expect(page.locator("#board-body tr").first).to_contain_text("Agent 499")
        browser_session.screenshot("dashboard-500-agents")

    def test_it_follows_the_dark_colour_scheme_and_draws_the_staffing_curve(
        self, alpha, alpha_supervisor, tenant_live_server, chromium
    ):
        session = open_browser(chromium, color_scheme="dark")
        try:
            with schema_context(alpha.schema_name):
                make_agent(name="Ana Torres")
                make_call()
                rows = [
                    {"agents": n, "simulated": {"service_level": sl}, "erlang_c": {"service_level": sl - 0.02}}
                    for n, sl in ((8, 0.41), (9, 0.62), (10, 0.77), (11, 0.86), (12, 0.93))
                ]
                make_staffing_study(
                    {
                        "service_level_target": 0.8,
                        "service_level_seconds": 20,
                        "smallest_staff_meeting_target": 11,
                        "erlang_c_smallest_staff": 11,
                        "rows": rows,
                    }
                )
            log_in(session.page, tenant_live_server, username=alpha_supervisor, password=SUPERVISOR_PASSWORD)
            expect(session.page.locator("#board-body .st-BUSY")).to_have_count(1)
            staffing = session.page.locator("#chart-staffing")
            expect(staffing.locator("circle")).to_have_count(5)
            expect(staffing.locator("circle.staff-pick")).to_have_count(1)
            expect(staffing).to_contain_text("smallest staff meeting 80 % in 20 s: 11 (Erlang C: 11)")

            background = session.page.evaluate("getComputedStyle(document.body).backgroundColor")

            red, green, blue = (int(v) for v in re.findall(r"\d+", background)[:3])
            assert red + green + blue < 3 * 60, background
            session.screenshot("dashboard-dark")
        finally:
            session.context.close()
        assert session.foreign_requests == [] and session.page_errors == []


def test_the_supervisor_fixture_is_a_plain_user(alpha, alpha_supervisor):
    with schema_context(alpha.schema_name):
        user = get_user_model().objects.get(username=alpha_supervisor)
        assert not user.is_staff and not user.is_superuser
        assert user.has_perm("dashboard.view_dashboard") and user.has_perm("dashboard.operate_dashboard")
