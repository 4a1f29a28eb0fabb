"""The supervisor dashboard over HTTP: login and roles, tenant isolation, the state endpoint (its
content and its bounded cost) and the agent status control."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context

from agents.models import Agent, AgentType
from calls.models import Call
from tests.dashboard.conftest import SUPERVISOR_PASSWORD, forced_login, make_staffing_study
from tests.factories import make_agent, make_call
from tests.helpers import assert_problem


def _post(browser, path: str, body: dict) -> Any:
    return browser.post(path, data=json.dumps(body), content_type="application/json")


class DashboardAccessTests:
    def test_it_sends_an_anonymous_visitor_to_the_login_page(self, alpha):
        response = Client_for("alpha.localhost").get("/dashboard/")

        assert response.status_code == 302
        assert response["Location"] == "/dashboard/login/?next=/dashboard/"

    def test_it_logs_a_supervisor_in_with_the_tenant_s_login(self, alpha, alpha_supervisor):
        browser = Client_for("alpha.localhost")

        response = browser.post("/dashboard/login/", {"username": "sup", "password": SUPERVISOR_PASSWORD})

        assert response.status_code == 302 and response["Location"] == "/dashboard/"
        page = browser.get("/dashboard/")
        assert page.status_code == 200
        html = page.content.decode()
        assert "Alpha Ltd" in html
        assert 'id="sim-form"' in html  # supervisors have the controls
        assert 'href="/admin/"' not in html  # and no admin
        assert browser.get("/admin/").status_code == 302  # the admin refuses a non-staff user

    def test_it_logs_the_tenant_admin_in_too(self, alpha):
        browser = Client_for("alpha.localhost")

        response = browser.post("/dashboard/login/", {"username": "admin", "password": alpha.admin_password})

        assert response.status_code == 302
        assert browser.get("/dashboard/").status_code == 200
        assert browser.get("/dashboard/api/state").status_code == 200

    def test_it_refuses_a_user_without_the_dashboard_role(self, alpha, alpha_stranger):
        browser = forced_login("alpha.localhost", alpha.schema_name, alpha_stranger)

        assert browser.get("/dashboard/").status_code == 403
        assert_problem(browser.get("/dashboard/api/state"), 403, "permission_denied")

    def test_it_lets_a_watcher_read_but_not_operate(self, alpha, alpha_watcher):
        with schema_context(alpha.schema_name):
            agent = make_agent(name="Ana", status=Agent.Status.OFFLINE)
        browser = forced_login("alpha.localhost", alpha.schema_name, alpha_watcher)

        page = browser.get("/dashboard/")
        state = browser.get("/dashboard/api/state")
        refused = _post(browser, f"/dashboard/api/agents/{agent.id}/status", {"status": "AVAILABLE"})

        assert page.status_code == 200 and 'id="sim-form"' not in page.content.decode()
        assert state.status_code == 200 and state.json()["can_operate"] is False
        assert_problem(refused, 403, "permission_denied")
        assert_problem(_post(browser, "/dashboard/api/simulation/start", {}), 403, "permission_denied")
        with schema_context(alpha.schema_name):
            assert Agent.objects.get(id=agent.id).status == Agent.Status.OFFLINE

    def test_it_refuses_tenant_a_s_user_on_tenant_b_s_dashboard(self, alpha, beta, alpha_supervisor):
        browser = Client_for("beta.localhost")

        login = browser.post("/dashboard/login/", {"username": "sup", "password": SUPERVISOR_PASSWORD})

        assert login.status_code == 200 and login.context["form"].errors  # no such user in beta
        assert browser.get("/dashboard/").status_code == 302

    def test_it_does_not_carry_a_session_to_another_tenant_s_host(self, alpha, beta, supervisor_browser):
        with schema_context(beta.schema_name):
            make_agent(name="Bruno of Beta")
        assert supervisor_browser.get("/dashboard/api/state").status_code == 200

        page = supervisor_browser.get("/dashboard/", HTTP_HOST="beta.localhost")
        state = supervisor_browser.get("/dashboard/api/state", HTTP_HOST="beta.localhost")

        assert page.status_code == 302 and page["Location"].startswith("/dashboard/login/")
        assert_problem(state, 403, "not_authenticated")
        assert "Bruno" not in state.content.decode()

    def test_it_has_no_dashboard_on_the_platform_host(self, alpha, supervisor_browser):
        response = supervisor_browser.get("/dashboard/", HTTP_HOST="localhost")

        assert response.status_code in (401, 404)

    def test_it_refuses_a_control_without_the_csrf_token(self, alpha, alpha_supervisor):
        with schema_context(alpha.schema_name):
            agent = make_agent(name="Ana", status=Agent.Status.OFFLINE)
        browser = forced_login("alpha.localhost", alpha.schema_name, alpha_supervisor, enforce_csrf_checks=True)

        response = _post(browser, f"/dashboard/api/agents/{agent.id}/status", {"status": "AVAILABLE"})

        assert_problem(response, 403, "permission_denied")
        with schema_context(alpha.schema_name):
            assert Agent.objects.get(id=agent.id).status == Agent.Status.OFFLINE


def Client_for(host: str):
    from django.test import Client

    return Client(HTTP_HOST=host)


class DashboardStateTests:
    def test_it_shows_agents_with_their_call_and_today_s_results(self, alpha, supervisor_browser):
        with schema_context(alpha.schema_name):
            busy = make_agent(name="Busy Bea")
            make_agent(name="Off Otto", status=Agent.Status.OFFLINE)
            call = make_call(call_type="llamada_tipo_2")
            waiting = make_call(call_type="llamada_tipo_3", priority=7)

        state = supervisor_browser.get("/dashboard/api/state").json()

        agents = {a["name"]: a for a in state["agents"]}
        assert agents["Busy Bea"]["status"] == "BUSY"
        assert agents["Busy Bea"]["call"]["id"] == str(call.id)
        assert agents["Busy Bea"]["call"]["talk_seconds"] >= 0
        assert agents["Off Otto"]["call"] is None
        call_types = {t["id"]: t for t in state["call_types"]}
        assert call_types[agents["Busy Bea"]["call"]["type"]]["slug"] == "llamada_tipo_2"
        assert state["queue"]["depth"] == 1
        assert state["queue"]["calls"] == [
            {
                "id": str(waiting.id),
                "type": waiting.call_type_id,
                "priority": 7,
                "wait_seconds": pytest.approx(0, abs=5),
            }
        ]
        assert state["kpis"]["assigned"]["value"] == 1
        assert state["kpis"]["occupancy"]["value"] == 1.0  # one staffed agent, busy
        assert state["kpis"]["occupancy"]["level"] == "bad"
        assert sum(state["series"]["arrivals"]) == 2

        with schema_context(alpha.schema_name):
            from calls.services import call_complete
            from tests.factories import TEST_ACTOR

            call_complete(call_id=call.id, outcome="OK", actor=TEST_ACTOR)
        state = supervisor_browser.get("/dashboard/api/state").json()

        bea = next(a for a in state["agents"] if a["name"] == "Busy Bea")
        assert bea["handled_today"] == 1 and bea["conversion_today"] == 1.0
        assert bea["call"]["id"] == str(waiting.id)  # she took the waiting call at once
        assert state["queue"]["depth"] == 0
        assert state["kpis"]["completed"]["value"] == 1
        assert state["kpis"]["conversion"]["value"] == 1.0
        row = state["conversion"]["agent_types"].index(busy.agent_type_id)
        column = state["conversion"]["call_types"].index(call.call_type_id)
        cell = state["conversion"]["cells"][row][column]
        assert cell == {"configured": 0.2, "observed": 1.0, "calls": 1}

    def test_it_shows_no_staffing_until_a_study_exists(self, alpha, supervisor_browser):
        assert supervisor_browser.get("/dashboard/api/state").json()["staffing"] is None
        study = {  # as ``simulate --staffing`` stores it (simulation/staffing.py)
            "kind": "staffing",
            "service_level_seconds": 20,
            "service_level_target": 0.8,
            "offered_erlangs": 9.5,
            "smallest_staff_meeting_target": 12,
            "erlang_c_smallest_staff": 12,
            "rows": [
                {"agents": 10, "simulated": {"service_level": 0.6, "asa_seconds": 40.0, "occupancy": 0.95},
                 "erlang_c": {"service_level": 0.58}},
                {"agents": 12, "simulated": {"service_level": 0.84, "asa_seconds": 9.0, "occupancy": 0.79},
                 "erlang_c": {"service_level": 0.86}},
            ],
        }  # fmt: skip
        with schema_context(alpha.schema_name):
            make_staffing_study(study)

        shown = supervisor_browser.get("/dashboard/api/state").json()["staffing"]

        assert shown["recommended_agents"] == 12 and shown["target"] == 0.8
        assert [(r["agents"], r["service_level"], r["erlang_c_service_level"]) for r in shown["rows"]] == [
            (10, 0.6, 0.58),
            (12, 0.84, 0.86),
        ]

    def test_it_shows_real_and_simulated_traffic_apart_on_request(self, alpha, supervisor_browser):
        from simulation.models import SimulationRun

        with schema_context(alpha.schema_name):
            make_agent(name="Real Rita")
            make_agent(name="Sim Sam", simulated=True)
            run = SimulationRun.objects.create(seed=1, strategy="longest_idle", rate_per_second=1, time_scale=1)
            make_call(simulation_run=run, simulation_sequence=0)
            make_call(simulation_run=run, simulation_sequence=1)  # waits: the only simulated agent is busy

        def names(traffic: str) -> tuple[set[str], int, int]:
            state = supervisor_browser.get(f"/dashboard/api/state?traffic={traffic}").json()
            return {a["name"] for a in state["agents"]}, state["kpis"]["assigned"]["value"], state["queue"]["depth"]

        assert names("all") == ({"Real Rita", "Sim Sam"}, 1, 1)
        assert names("real") == ({"Real Rita"}, 0, 0)
        assert names("simulated") == ({"Sim Sam"}, 1, 1)
        agents = supervisor_browser.get("/dashboard/api/state").json()["agents"]
        assert {a["name"]: a["simulated"] for a in agents} == {"Real Rita": False, "Sim Sam": True}
        assert_problem(supervisor_browser.get("/dashboard/api/state?traffic=fake"), 400, "validation_error")

    @pytest.mark.parametrize("agent_count", [5, 500])
    def test_it_costs_the_same_queries_whatever_the_number_of_agents(self, alpha, supervisor_browser, agent_count):
        with schema_context(alpha.schema_name):
            types = list(AgentType.objects.order_by("slug"))
            Agent.objects.bulk_create(
                Agent(name=f"bulk {i:04d}", agent_type=types[i % len(types)], status=Agent.Status.OFFLINE)
                for i in range(agent_count - 2)
            )
            make_agent(name="on a call")
            make_agent(name="free")
            make_call()
            make_call()
            make_call()  # waits

        supervisor_browser.get("/dashboard/api/state")  # warm the configuration snapshot
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = supervisor_browser.get("/dashboard/api/state")
            elapsed_ms = (time.perf_counter() - started) * 1000

        assert response.status_code == 200
        assert len(response.json()["agents"]) == agent_count
        # Session, user, permissions (a supervisor is not a superuser), then the state itself.
        assert len(queries) == EXPECTED_STATE_QUERIES, "\n".join(q["sql"][:150] for q in queries.captured_queries)
        size_kb = len(response.content) / 1024
        print(
            f"dashboard state with {agent_count} agents: {len(queries)} queries, {elapsed_ms:.1f} ms, {size_kb:.0f} kB"
        )


# Session, user, the permissions (user and group), then eleven for the state itself; no SET
# search_path: the connection already has the tenant's (callcenter/db/base.py).
EXPECTED_STATE_QUERIES = 15


class DashboardAgentStatusTests:
    def test_it_sets_an_agent_available_and_the_engine_gives_it_the_next_call(self, alpha, supervisor_browser):
        with schema_context(alpha.schema_name):
            agent = make_agent(name="Ana", status=Agent.Status.OFFLINE)

        response = _post(supervisor_browser, f"/dashboard/api/agents/{agent.id}/status", {"status": "AVAILABLE"})

        assert response.status_code == 200 and response.json()["status"] == "AVAILABLE"
        with schema_context(alpha.schema_name):
            call = make_call()
            assert call.status == Call.Status.ASSIGNED and call.agent_id == agent.id
            from audit.models import AuditEntry

            entry = AuditEntry.objects.get(action="agent.status")
            assert entry.actor == "user:sup"

    def test_it_puts_an_agent_on_break_and_the_engine_passes_it_over(self, alpha, supervisor_browser):
        with schema_context(alpha.schema_name):
            agent = make_agent(name="Ana")

        response = _post(supervisor_browser, f"/dashboard/api/agents/{agent.id}/status", {"status": "BREAK"})

        assert response.status_code == 200
        with schema_context(alpha.schema_name):
            assert make_call().status == Call.Status.QUEUED

    def test_it_asks_for_force_before_ending_a_call(self, alpha, supervisor_browser):
        with schema_context(alpha.schema_name):
            agent = make_agent(name="Ana")
            call = make_call()

        refused = _post(supervisor_browser, f"/dashboard/api/agents/{agent.id}/status", {"status": "OFFLINE"})
        forced = _post(
            supervisor_browser, f"/dashboard/api/agents/{agent.id}/status", {"status": "OFFLINE", "force": True}
        )

        assert_problem(refused, 409, "agent_busy")
        assert forced.status_code == 200 and forced.json()["status"] == "OFFLINE"
        with schema_context(alpha.schema_name):
            assert Call.objects.get(id=call.id).end_reason == "agent_forced_status"

    @pytest.mark.parametrize(
        "body, status, code",
        [
            ({"status": "BUSY"}, 400, "validation_error"),
            ({"status": "asleep"}, 400, "validation_error"),
            ({}, 400, "validation_error"),
            ({"status": "BREAK", "extra": 1}, 400, "validation_error"),
        ],
    )
    def test_it_refuses_bad_input_and_changes_nothing(self, alpha, supervisor_browser, body, status, code):
        with schema_context(alpha.schema_name):
            agent = make_agent(name="Ana", status=Agent.Status.OFFLINE)

        response = _post(supervisor_browser, f"/dashboard/api/agents/{agent.id}/status", body)

        assert_problem(response, status, code)
        with schema_context(alpha.schema_name):
            assert Agent.objects.get(id=agent.id).status == Agent.Status.OFFLINE

    def test_it_answers_404_for_another_tenant_s_agent(self, alpha, beta, supervisor_browser):
        with schema_context(beta.schema_name):
            foreign = make_agent(name="Bruno", status=Agent.Status.OFFLINE)

        response = _post(supervisor_browser, f"/dashboard/api/agents/{foreign.id}/status", {"status": "AVAILABLE"})

        assert_problem(response, 404, "agent_not_found")
        with schema_context(beta.schema_name):
            assert Agent.objects.get(id=foreign.id).status == Agent.Status.OFFLINE


class SupervisorCreateCommandTests:
    def test_it_creates_a_supervisor_who_can_log_in_on_the_tenant_s_host_only(self, alpha, beta, users):
        from io import StringIO

        from django.core.management import call_command

        out = StringIO()
        call_command("supervisor_create", tenant="alpha", username="eva", password="eva-pw-1234", stdout=out)
        users.append((alpha.schema_name, "eva"))

        assert "Supervisor 'eva' created for alpha" in out.getvalue()
        alpha_browser, beta_browser = Client_for("alpha.localhost"), Client_for("beta.localhost")
        assert (
            alpha_browser.post("/dashboard/login/", {"username": "eva", "password": "eva-pw-1234"}).status_code == 302
        )
        assert beta_browser.post("/dashboard/login/", {"username": "eva", "password": "eva-pw-1234"}).status_code == 200
        from django.core.management.base import CommandError

        with pytest.raises(CommandError, match="already exists"):
            call_command("supervisor_create", tenant="alpha", username="eva", stdout=StringIO())
        with pytest.raises(CommandError, match="No tenant"):
            call_command("supervisor_create", tenant="nope", username="eva", stdout=StringIO())
