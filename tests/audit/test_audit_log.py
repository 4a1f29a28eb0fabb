"""The audit log records who did what through the API, the admin and the commands, and is
visible read-only through the API and in the admin."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django_tenants.utils import schema_context

from agents.models import Agent
from audit.models import AuditEntry
from tenants.models import ApiKey
from tests.factories import make_agent
from tests.helpers import assert_problem


def _admin(alpha) -> Client:
    browser = Client(HTTP_HOST="alpha.localhost")
    with schema_context(alpha.schema_name):
        browser.force_login(get_user_model().objects.get(username="admin"))
    return browser


class AuditLogTests:
    def test_it_shows_who_did_what_through_the_api_the_admin_and_a_command(self, alpha, capsys) -> None:
        client = alpha.client()
        prefix = alpha.api_key.split("_")[1]
        created = client.post("/agents", {"name": "Ana", "agent_type": "agente_tipo_1"}).json()
        admin = _admin(alpha)
        admin.post(
            "/admin/agents/agent/",
            {"action": "make_available", "_selected_action": [created["id"]], "index": "0"},
            follow=True,
        )
        call_command("apikey_create", "--tenant", "alpha", "--name", "audited", "--scope", "read")
        new_key = ApiKey.objects.get(tenant__slug="alpha", name="audited")
        try:
            entries = client.get("/audit").json()["results"]
            by_action = {(e["action"], e["actor"]) for e in entries}
            assert ("agent.create", f"key:{prefix}") in by_action
            assert ("agent.status", "user:admin") in by_action
            assert ("apikey.create", "cli") in by_action
            agent_entry = next(e for e in entries if e["action"] == "agent.create")
            assert agent_entry["object_id"] == created["id"] and agent_entry["after"]
            assert client.get(f"/audit/{agent_entry['id']}").json() == agent_entry
            only_api = client.get(f"/audit?actor=key:{prefix}").json()["results"]
            assert only_api and all(e["actor"] == f"key:{prefix}" for e in only_api)
        finally:
            new_key.delete()

    def test_it_is_read_only_through_the_api(self, in_alpha) -> None:
        make_agent(name="x")
        client = in_alpha.client()
        entry = client.get("/audit").json()["results"][0]
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            assert_problem(client.request(method, f"/audit/{entry['id']}", {}), 405, "method_not_allowed")
        assert_problem(client.request("POST", "/audit", {}), 405, "method_not_allowed")
        assert AuditEntry.objects.filter(id=entry["id"]).exists()
        assert_problem(client.get("/audit/99999999999999999999"), 404, "audit_entry_not_found")

    def test_it_is_read_only_in_the_admin(self, alpha) -> None:
        with schema_context(alpha.schema_name):
            make_agent(name="y")
            entry = AuditEntry.objects.first()
        admin = _admin(alpha)
        page = admin.get(f"/admin/audit/auditentry/{entry.id}/change/")
        assert page.status_code == 200 and b"agent.create" in page.content
        assert b'name="_save"' not in page.content
        assert admin.get("/admin/audit/auditentry/add/").status_code == 403
        admin.post(f"/admin/audit/auditentry/{entry.id}/delete/", {"post": "yes"})
        with schema_context(alpha.schema_name):
            assert AuditEntry.objects.filter(id=entry.id).exists()

    def test_another_tenant_sees_none_of_it(self, in_alpha, beta) -> None:
        make_agent(name="secret")
        entry = AuditEntry.objects.first()
        assert entry is not None and Agent.objects.exists()
        assert beta.client().get("/audit").json()["results"] == []
        assert_problem(beta.client().get(f"/audit/{entry.id}"), 404, "audit_entry_not_found")


class CallEndAuditTests:
    def test_it_records_who_completed_cancelled_and_hung_up_calls(self, alpha) -> None:
        client = alpha.client()
        prefix = alpha.api_key.split("_")[1]
        client.post("/agents", {"name": "Ana", "agent_type": "agente_tipo_1", "status": "AVAILABLE"})
        body = {"phone_number": "+34600123456", "call_type": "llamada_tipo_1"}
        completed = client.post("/calls", body).json()
        hung_up = client.post("/calls", body).json()  # waits, then is handed to Ana
        cancelled = client.post("/calls", body).json()  # waits

        client.post(f"/calls/{completed['id']}/complete", {"outcome": "OK"})
        client.delete(f"/calls/{cancelled['id']}")  # still waiting
        client.delete(f"/calls/{hung_up['id']}")  # on the line with Ana

        with schema_context(alpha.schema_name):
            entries = {
                (e.object_id, e.action, e.actor, (e.after or {})["status"], (e.before or {})["status"])
                for e in AuditEntry.objects.filter(object_type="call")
            }
        actor = f"key:{prefix}"
        assert entries == {
            (completed["id"], "call.complete", actor, "COMPLETED", "ASSIGNED"),
            (hung_up["id"], "call.cancel", actor, "CANCELLED", "ASSIGNED"),
            (cancelled["id"], "call.cancel", actor, "CANCELLED", "QUEUED"),
        }
