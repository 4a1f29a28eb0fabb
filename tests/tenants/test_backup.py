"""Per-tenant backup and restore (the tenant_backup command, as an operator runs it): the tenant is
dropped, restored from its backup, and everything is back: data, keys, host, Redis state."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django_tenants.utils import schema_context

from assignment import engine
from assignment.services.recovery import engine_drift
from tenants.models import Tenant
from tenants.selectors import tenant_get
from tenants.services import tenant_create, tenant_delete
from tests.helpers import ApiClient


class TenantBackupTests:
    def test_a_dropped_tenant_comes_back_whole_from_its_backup(self, alpha, tmp_path: Path) -> None:
        created = tenant_create(name="Gamma", slug="gamma", admin_password="gamma-admin-pw")
        key = created.issued_key.raw_key
        try:
            client = ApiClient(key=key)
            agent = client.post("/agents", {"name": "Ana", "agent_type": "agente_tipo_1"}).json()
            client.put(f"/agents/{agent['id']}/status", {"status": "AVAILABLE"})
            talking = client.post("/calls", {"phone_number": "+34600123456", "call_type": "llamada_tipo_1"}).json()
            waiting = client.post("/calls", {"phone_number": "+34600123457", "call_type": "llamada_tipo_1"}).json()
            assert (talking["status"], waiting["status"]) == ("ASSIGNED", "QUEUED")
            client.put("/config", {"max_queue_length": 7})

            call_command("tenant_backup", str(tmp_path / "gamma"), "--tenant", "gamma")
            tenant_delete(tenant=Tenant.objects.get(slug="gamma"))
            engine.forget_tenant(schema_name="gamma")
            assert client.get("/agents").status_code == 401

            call_command("tenant_backup", str(tmp_path / "gamma"), "--restore")
            assert client.get(f"/calls/{talking['id']}").json()["phone_number"] == "+34600123456"
            assert client.get(f"/calls/{waiting['id']}").json()["status"] == "QUEUED"
            assert client.get("/config").json()["max_queue_length"] == 7
            assert [a["id"] for a in client.get("/agents").json()["results"]] == [agent["id"]]
            with schema_context("gamma"):
                assert not engine_drift()
            # The engine works on the restored state: ending the call hands the agent the waiting one.
            client.post(f"/calls/{talking['id']}/complete", {"outcome": "OK"})
            assert client.get(f"/calls/{waiting['id']}").json()["status"] == "ASSIGNED"
            assert ApiClient(key=None, host="gamma.localhost").get("/admin/login/").status_code == 200

            with pytest.raises(CommandError, match="exists"):
                call_command("tenant_backup", str(tmp_path / "gamma"), "--restore")
            call_command("tenant_backup", str(tmp_path / "gamma"), "--restore", "--replace")
            assert client.get(f"/calls/{waiting['id']}").json()["status"] == "QUEUED"  # as backed up
        finally:
            tenant = tenant_get(slug="gamma")
            if tenant is not None:
                tenant_delete(tenant=tenant)
            engine.forget_tenant(schema_name="gamma")

    def test_it_refuses_an_unknown_tenant_or_directory(self, alpha, tmp_path: Path) -> None:
        with pytest.raises(CommandError, match="No tenant"):
            call_command("tenant_backup", str(tmp_path / "x"), "--tenant", "nobody")
        with pytest.raises(CommandError, match="missing is not a tenant backup"):
            call_command("tenant_backup", str(tmp_path / "missing"), "--restore")
        (tmp_path / "junk").mkdir()
        (tmp_path / "junk" / "tenant.json").write_text("not json")
        (tmp_path / "junk" / "schema.dump").write_text("")
        with pytest.raises(CommandError, match="Not a tenant backup of this version"):
            call_command("tenant_backup", str(tmp_path / "junk"), "--restore")
