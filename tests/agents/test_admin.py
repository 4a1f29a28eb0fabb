"""The tenant admin as a control room: agent status actions through the services, what a busy agent
shows, routing settings grouped with help text, the call-type mix, readable calls."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django_tenants.utils import schema_context

from agents.models import Agent
from assignment.models import ROUTING_SETTINGS_ID, RoutingSettings
from calls.models import Call
from routing.services import SETTINGS_FIELDS
from tests.factories import make_agent, make_call


@pytest.fixture
def admin_browser(alpha) -> Client:
    browser = Client(HTTP_HOST="alpha.localhost")
    with schema_context(alpha.schema_name):
        browser.force_login(get_user_model().objects.get(username="admin"))
    return browser


def _action(browser: Client, action: str, *agents: Agent):
    return browser.post(
        "/admin/agents/agent/",
        {"action": action, "_selected_action": [str(a.pk) for a in agents], "index": "0"},
        follow=True,
    )


class AgentAdminActionTests:
    def test_it_makes_agents_available_and_the_engine_uses_them(self, alpha, admin_browser):
        with schema_context(alpha.schema_name):
            ana = make_agent(name="Ana", status=Agent.Status.OFFLINE)

        response = _action(admin_browser, "make_available", ana)

        assert response.status_code == 200
        assert "1 agent(s) set AVAILABLE." in response.content.decode()
        with schema_context(alpha.schema_name):
            call = make_call()
            assert (call.status, call.agent_id) == (Call.Status.ASSIGNED, ana.id)
            from audit.models import AuditEntry

            assert AuditEntry.objects.filter(action="agent.status", actor="user:admin").count() == 1

    def test_it_puts_agents_on_break_and_the_engine_passes_them_over(self, alpha, admin_browser):
        with schema_context(alpha.schema_name):
            ana = make_agent(name="Ana")

        _action(admin_browser, "make_break", ana)

        with schema_context(alpha.schema_name):
            assert Agent.objects.get(id=ana.id).status == Agent.Status.BREAK
            assert make_call().status == Call.Status.QUEUED

    def test_it_leaves_a_busy_agent_alone_unless_forced(self, alpha, admin_browser):
        with schema_context(alpha.schema_name):
            ana = make_agent(name="Ana")
            otto = make_agent(name="Otto", status=Agent.Status.BREAK)
            call = make_call()
            assert call.agent_id == ana.id

        response = _action(admin_browser, "make_offline", ana, otto)

        html = response.content.decode()
        assert "1 agent(s) set OFFLINE." in html and "Left alone, on a call: Ana" in html
        with schema_context(alpha.schema_name):
            assert Agent.objects.get(id=ana.id).status == Agent.Status.BUSY

        _action(admin_browser, "force_offline", ana)

        with schema_context(alpha.schema_name):
            assert Agent.objects.get(id=ana.id).status == Agent.Status.OFFLINE
            assert Call.objects.get(id=call.id).end_reason == "agent_forced_status"


class AgentAdminDisplayTests:
    def test_it_shows_a_busy_agent_s_call_and_talk_time(self, alpha, admin_browser):
        with schema_context(alpha.schema_name):
            make_agent(name="Bea")
            make_agent(name="Ivo")
            make_call(call_type="llamada_tipo_2")
            Agent.objects.filter(name="Bea").update(talk_time_seconds=179.131293)

        html = admin_browser.get("/admin/agents/agent/").content.decode()

        assert "on a call (Llamada tipo 2) for 0:0" in html
        assert "idle for 0:0" in html  # Ivo
        assert "2:59" in html and "179.13" not in html  # talk time as minutes:seconds
        assert "Agente tipo 1 (agente_tipo_1)" in html  # display name beside the slug
        assert "(1, BUSY)" not in html

    def test_it_shows_the_matrix_with_display_names(self, alpha, admin_browser):
        html = admin_browser.get("/admin/assignment/conversionrate/").content.decode()

        assert "Llamada tipo 1<br><small>llamada_tipo_1</small>" in html
        assert "Agente tipo 4 <small>(agente_tipo_4)</small>" in html


def _settings_form(alpha, **overrides) -> dict[str, str]:
    with schema_context(alpha.schema_name):
        settings = RoutingSettings.objects.get(id=ROUTING_SETTINGS_ID)
        form = {name: str(getattr(settings, name)) for name in SETTINGS_FIELDS}
    form.update({f"mix__llamada_tipo_{i}": "0.25" for i in range(1, 5)})
    form.update({k: str(v) for k, v in overrides.items()})
    return form


class RoutingSettingsAdminTests:
    def test_it_groups_the_settings_with_help_text_on_every_field(self, alpha, admin_browser):
        response = admin_browser.get("/admin/assignment/routingsettings/1/change/")

        assert response.status_code == 200
        titles = [title for title, _ in response.context["adminform"].fieldsets]
        assert titles == ["Routing", "Queue", "Simulation", "Simulated call-type mix"]
        form = response.context["adminform"].form
        for name, field in form.fields.items():
            assert field.help_text, name
        assert set(SETTINGS_FIELDS) <= set(form.fields)

    def test_it_saves_a_call_type_mix_that_adds_up_to_one(self, alpha, admin_browser):
        form = _settings_form(
            alpha,
            mix__llamada_tipo_1="0.4",
            mix__llamada_tipo_2="0.3",
            mix__llamada_tipo_3="0.2",
            mix__llamada_tipo_4="0.1",
        )
        form["wrap_up_seconds"] = "5"

        response = admin_browser.post("/admin/assignment/routingsettings/1/change/", form)

        assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
        config = alpha.client().get("/config").json()
        assert config["call_type_mix"] == pytest.approx(
            {"llamada_tipo_1": 0.4, "llamada_tipo_2": 0.3, "llamada_tipo_3": 0.2, "llamada_tipo_4": 0.1}
        )
        assert config["wrap_up_seconds"] == 5

    @pytest.mark.parametrize(
        "overrides, message",
        [
            ({"mix__llamada_tipo_1": "0.5"}, "must add up to 1"),
            ({"mix__llamada_tipo_2": "-0.1"}, "greater than or equal to 0"),
            ({"duration_min_seconds": "500", "duration_max_seconds": "100"}, "greater than duration_min_seconds"),
            ({"service_level_target": "1.5"}, ""),
        ],
    )
    def test_it_refuses_bad_settings_and_changes_nothing(self, alpha, admin_browser, overrides, message):
        before = alpha.client().get("/config").json()

        response = admin_browser.post("/admin/assignment/routingsettings/1/change/", _settings_form(alpha, **overrides))

        assert response.status_code == 200
        assert message in response.content.decode()
        assert response.context["adminform"].form.errors
        assert alpha.client().get("/config").json() == before


class CallAdminTests:
    def test_it_filters_real_and_simulated_calls(self, alpha, admin_browser):
        with schema_context(alpha.schema_name):
            from simulation.models import SimulationRun

            make_agent(name="Ana")
            real = make_call()
            run = SimulationRun.objects.create(seed=1, strategy="longest_idle", rate_per_second=1, time_scale=1)
            simulated = make_call(simulation_run=run, simulation_sequence=0)

        real_only = admin_browser.get("/admin/calls/call/?traffic=real").content.decode()
        simulated_only = admin_browser.get("/admin/calls/call/?traffic=simulated").content.decode()

        assert str(real.id)[:8] in real_only and str(simulated.id)[:8] not in real_only
        assert str(simulated.id)[:8] in simulated_only and str(real.id)[:8] not in simulated_only
        assert "so far" in real_only  # an active call's talk time
